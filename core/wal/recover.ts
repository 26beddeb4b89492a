/**
 * Restores a database from the cluster's WAL archive to a moment: the archive as a recovery
 * instance's WAL source, and the whole data path (base backup, replay, copy out) that every
 * point-in-time target runs (the preview and overwrite runners, the daily drill).
 */
import type pg from "pg";
import type { Deps } from "../deps.ts";
import { copyDatabase } from "../pg/copy-database.ts";
import { RecoveryError, startRecoveryInstance, type RecoveryInstance } from "../pg/recovery.ts";
import type { WalSource } from "../pg/wal-spool.ts";
import { getArchive, getWalFile, openBaseBackup, readWalFile, restorableWindow, WalObjectError } from "./archive.ts";
import { compareLsn, parseLsn, parseSegmentName, segmentBounds, timelineHex } from "../pg/lsn.ts";
import { baseBackupForTime } from "./window.ts";
import { WorkerFailure, type ToolReport } from "../pg/classify.ts";
import { closeQuietly, connect, type ClusterConnection } from "../pg/pgconn.ts";

/**
 * A point-in-time restore's data path, for every target (a preview, the hidden database of an
 * overwrite, the drill's scratch database): a recovery instance from the cluster's archive,
 * replayed to the time, and the project's database copied out of it into `into`.
 */
export interface PitrCopyInput {
  deps: Deps;
  clusterId: string;
  /** The live cluster: looked up for the database's OID and to mark the WAL; a restore still runs when it is down. */
  cluster: ClusterConnection;
  database: string;
  time: Date;
  /** A restore point's name in the WAL (pg_create_restore_point): replay stops exactly there. */
  restorePointName?: string;
  into: ClusterConnection;
  intoDatabase: string;
  signal: AbortSignal;
  /** Seconds to wait for the archive to hold a commit after the target (default 120). */
  archiveWaitSeconds?: number;
  progress?: (line: string) => void;
  workRoot?: string;
}

export interface PitrCopyResult {
  baseBackupId: string;
  stoppedAt: string | undefined;
  rowCounts: Record<string, number>;
  report: ToolReport;
  timings: { extractMs: number; replayMs: number; copyMs: number };
  walSegments: number;
  walBytes: number;
}

const permanent = (message: string, cause?: unknown) => new WorkerFailure("permanent", message, { cause });

/**
 * WAL as PostgreSQL's restore_command wants it, from the archive's index and objects: a segment
 * the index lacks although the archive reaches past it is an error (a hole), not the end of the
 * archive; the partial segment is padded to the segment size (PostgreSQL reads whole segments).
 */
export function archiveWalSource(deps: Deps, clusterId: string): WalSource {
  // The segment size does not change: read once, not once a segment.
  let segmentSize: Promise<number> | undefined;
  const sizeOf = () => (segmentSize ??= getArchive(deps, clusterId).then((a) => a?.segment_size ?? 16 * 1024 * 1024));
  return {
    async fetchSegment(_timeline, name) {
      const file = await getWalFile(deps, clusterId, name);
      const size = await sizeOf();
      if (!file) {
        // Read now: where the archive ends decides between its end and a hole.
        const archive = await getArchive(deps, clusterId);
        const seg = parseSegmentName(name, size);
        const start = segmentBounds(seg.segno, size).start;
        if (archive?.archived_lsn && archive.timeline === seg.timeline && compareLsn(start, archive.archived_lsn) < 0) {
          throw new WalObjectError("missing", `WAL segment ${name} is not in the archive, although the archive reaches ${archive.archived_lsn}`);
        }
        return undefined;
      }
      const bytes = await readWalFile(deps, file, { rawChecksum: false });
      if (file.kind === "segment" && bytes.length < size) return Buffer.concat([bytes, Buffer.alloc(size - bytes.length)]);
      return bytes;
    },
    async fetchHistory(timeline) {
      const file = await getWalFile(deps, clusterId, `${timelineHex(timeline)}.history`);
      return file ? readWalFile(deps, file) : undefined;
    },
  };
}

/**
 * PostgreSQL stops a recovery to a time at the first commit after it: without one in the archive
 * (an idle cluster), replay would run off the end and fail. So a transaction is committed on the
 * live cluster now, and the restore waits until the archive holds it. A cluster that cannot be
 * reached is not waited for: the restore goes ahead (the usual case then is a later commit
 * already archived) and fails clearly if replay cannot reach the time.
 */
async function commitAfterTarget(input: PitrCopyInput): Promise<void> {
  let client: pg.Client | undefined;
  let lsn: string;
  try {
    client = await connect(input.cluster, input.cluster.adminDatabase);
    const { rows } = await client.query<{ lsn: string }>("WITH x AS (SELECT txid_current()) SELECT pg_current_wal_lsn()::text AS lsn FROM x");
    lsn = rows[0]!.lsn;
  } catch (err) {
    input.progress?.(`the cluster could not be reached to mark the WAL (${(err as Error).message}); restoring from what the archive holds`);
    return;
  } finally {
    await closeQuietly(client);
  }
  const deadline = Date.now() + (input.archiveWaitSeconds ?? 120) * 1000;
  for (;;) {
    const archive = await getArchive(input.deps, input.clusterId);
    if (archive?.archived_lsn && parseLsn(archive.archived_lsn) >= parseLsn(lsn)) return;
    if (Date.now() > deadline) {
      input.progress?.(`the archive has not reached ${lsn} yet (at ${archive?.archived_lsn ?? "nothing"}); restoring from what it holds`);
      return;
    }
    if (input.signal.aborted) throw new WorkerFailure("transient", "The point-in-time restore was interrupted.");
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function databaseOid(conn: ClusterConnection, database: string): Promise<number | undefined> {
  let client: pg.Client | undefined;
  try {
    client = await connect(conn, conn.adminDatabase);
    const { rows } = await client.query<{ oid: string }>("SELECT oid::text AS oid FROM pg_database WHERE datname = $1", [database]);
    return rows[0] ? Number(rows[0].oid) : undefined;
  } finally {
    await closeQuietly(client);
  }
}

/** A point-in-time restore's failure, classified: the archive's and the backup's bytes do not change by trying again. */
export function asFailure(err: unknown): WorkerFailure {
  if (err instanceof WorkerFailure) return err;
  if (err instanceof RecoveryError) {
    if (err.stage === "interrupted") return new WorkerFailure("transient", "The point-in-time restore was interrupted.", { cause: err });
    // The archive's and the backup's bytes do not change by trying again; a server that could
    // not start (no binary, disk full) is not fixed by a retry either.
    return permanent(`The point-in-time restore failed: ${err.message}.`, err);
  }
  return new WorkerFailure("transient", `The point-in-time restore failed: ${(err as Error).message}`, { cause: err });
}

export async function restoreDatabaseToTime(input: PitrCopyInput): Promise<PitrCopyResult> {
  const { deps, signal } = input;
  const say = input.progress ?? (() => undefined);
  // First: a time just restored to may be only just inside the archive (within its lag).
  await commitAfterTarget(input);
  const window = await restorableWindow(deps, input.clusterId);
  const base = baseBackupForTime(window, window.baseBackups, input.time);
  if (!base) {
    throw permanent(
      `${input.time.toISOString()} is no longer restorable (the window is ${window.earliest_restore_time ?? "empty"} to ${window.latest_restore_time ?? "empty"}).`,
    );
  }
  const liveOid = await databaseOid(input.cluster, input.database).catch(() => undefined);

  const recover = async (includeOids: number[] | undefined): Promise<RecoveryInstance> =>
    startRecoveryInstance({
      baseBackup: () => openBaseBackup(deps, base),
      wal: archiveWalSource(deps, input.clusterId),
      // The segment holding the backup's start LSN, which replay reads first.
      firstSegment: base.start_segment ?? undefined,
      target: input.restorePointName ? { name: input.restorePointName } : { time: input.time },
      includeDatabaseOids: includeOids,
      user: input.cluster.user,
      pgBinDirs: deps.pgBinDirs,
      workRoot: input.workRoot,
      signal,
      onProgress: (message, fields) => say(fields?.line ? String(fields.line) : message),
    });

  let inst: RecoveryInstance | undefined;
  try {
    say(
      `restoring base backup ${base.id} (${base.finished_at}) and replaying WAL to ${input.restorePointName ? `restore point ${input.restorePointName}` : input.time.toISOString()}`,
    );
    inst = await recover(liveOid === undefined ? undefined : [liveOid]);
    const oidThen = await databaseOid(inst.conn, input.database);
    if (oidThen === undefined) throw permanent(`The database "${input.database}" did not exist at ${input.time.toISOString()}.`);
    if (liveOid !== undefined && oidThen !== liveOid) {
      // Dropped and created again since: the database of that time was left out. Do it whole.
      say(`the database was recreated since ${input.time.toISOString()}: restoring the whole cluster instead`);
      await inst.stop();
      inst = await recover(undefined);
    }
    say(`replay stopped ${inst.stoppedAt ?? "at the target"}; copying ${input.database} out`);
    const copied = await copyDatabase({
      source: inst.conn,
      sourceDatabase: input.database,
      sourceMajor: inst.major,
      target: input.into,
      targetDatabase: input.intoDatabase,
      pgBinDirs: deps.pgBinDirs,
      signal,
      failed: (message, report, cause) => new WorkerFailure("permanent", message, { report, cause }),
    });
    return {
      baseBackupId: base.id,
      stoppedAt: inst.stoppedAt,
      rowCounts: copied.rowCounts,
      report: copied.report,
      timings: { ...inst.timings, copyMs: copied.ms },
      walSegments: inst.wal.fetched,
      walBytes: inst.wal.bytes,
    };
  } catch (err) {
    throw asFailure(err);
  } finally {
    await inst?.stop();
  }
}
