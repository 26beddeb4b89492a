/**
 * Base backups of a cluster: when they are due (at once for an archive without one, after a gap,
 * daily at a UTC time, on an operator's demand) and running one. A failed base backup leaves the
 * previous ones as they were: only a verified newer one ever replaces them (see retention).
 */
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { errorText } from "../concurrency.ts";
import { iso, type Deps } from "../deps.ts";
import { newId } from "../ids.ts";
import { getClusterConnection } from "../orgs/orgs.ts";
import { takeBaseBackup } from "../pg/basebackup.ts";
import { connectForWal, pgBinDirFor, serverWal } from "../pg/walstream.ts";
import { redact } from "../redact.ts";
import { closeQuietly } from "../pg/pgconn.ts";
import { getArchive, listArchives, listBaseBackups, putBaseBackup, updateArchive } from "./archive.ts";
import { baseBackupKey, baseBackupManifestKey, WAL_COMPRESSION } from "./layout.ts";
import { segmentName, segnoOf } from "../pg/lsn.ts";
import type { BaseBackupItem, WalArchiveItem } from "./records.ts";

type BbDeps = Pick<Deps, "ddb" | "table" | "now" | "s3" | "bucket" | "secretKey" | "pgBinDirs" | "log" | "workerId">;

/** `HH:MM` UTC of the daily base backup (CAPYDB_BASE_BACKUP_AT), 04:00 by default. */
export const DEFAULT_BASE_BACKUP_AT = "04:00";
/** After a failed base backup, the next try. */
export const BASE_BACKUP_RETRY_MS = 5 * 60_000;

/**
 * Takes one base backup of the cluster now and records it (running, then completed and verified,
 * or failed with its error). The archive's `base_backup_due_at` is cleared when it succeeds.
 */
export async function runBaseBackup(
  deps: BbDeps,
  clusterId: string,
  trigger: BaseBackupItem["trigger"],
  opts: { signal?: AbortSignal; scratchDir?: string } = {},
): Promise<BaseBackupItem> {
  const startedAt = deps.now();
  const id = newId("baseBackup", startedAt);
  let item: BaseBackupItem = {
    item_type: "base_backup",
    id,
    cluster_id: clusterId,
    state: "running",
    trigger,
    timeline: null,
    start_lsn: null,
    end_lsn: null,
    start_segment: null,
    started_at: iso(startedAt),
    finished_at: null,
    verified_at: null,
    key: baseBackupKey(clusterId, id),
    manifest_key: baseBackupManifestKey(clusterId, id),
    compression: WAL_COMPRESSION,
    sha256: null,
    size_bytes: null,
    raw_bytes: null,
    duration_ms: null,
    error: null,
    worker_id: deps.workerId,
    updated_at: iso(startedAt),
  };
  await putBaseBackup(deps, item, { create: true });
  const t0 = performance.now();
  const conn = await getClusterConnection(deps, clusterId);
  try {
    const client = await connectForWal(conn);
    let major: number;
    let segmentSize: number;
    try {
      const server = await serverWal(client);
      major = server.major;
      segmentSize = server.segmentSize;
    } finally {
      await closeQuietly(client);
    }
    const result = await takeBaseBackup({
      binDir: await pgBinDirFor(major, deps.pgBinDirs),
      conn,
      s3: deps.s3,
      bucket: deps.bucket,
      key: item.key,
      manifestKey: item.manifest_key,
      label: `capydb ${id}`,
      signal: opts.signal,
      scratchDir: opts.scratchDir,
    });
    const done = iso(deps.now());
    item = {
      ...item,
      state: "completed",
      timeline: result.timeline,
      start_lsn: result.startLsn,
      end_lsn: result.endLsn,
      start_segment: segmentName(result.timeline, segnoOf(result.startLsn, segmentSize), segmentSize),
      finished_at: done,
      verified_at: done,
      sha256: result.sha256,
      size_bytes: result.storedBytes,
      raw_bytes: result.rawBytes,
      duration_ms: Math.round(performance.now() - t0),
      updated_at: done,
    };
    await putBaseBackup(deps, item);
    await updateArchive(deps, clusterId, { base_backup_due_at: null, base_backup_reason: null });
    deps.log.info("base backup completed", { cluster_id: clusterId, base_backup_id: id, size_bytes: item.size_bytes, duration_ms: item.duration_ms });
    return item;
  } catch (err) {
    const message = redact(errorText(err), [conn.password]).slice(0, 2000);
    item = {
      ...item,
      state: "failed",
      error: message,
      finished_at: iso(deps.now()),
      duration_ms: Math.round(performance.now() - t0),
      updated_at: iso(deps.now()),
    };
    await putBaseBackup(deps, item);
    await deps.s3.send(new DeleteObjectCommand({ Bucket: deps.bucket, Key: item.key })).catch(() => undefined);
    // Tried again later, not in a tight loop; the previous base backups stay as they are.
    await updateArchive(deps, clusterId, { base_backup_due_at: iso(new Date(deps.now().getTime() + BASE_BACKUP_RETRY_MS)) }).catch(() => undefined);
    deps.log.error("base backup failed", { cluster_id: clusterId, base_backup_id: id, error: message });
    return item;
  }
}

/** Asks for a base backup of the cluster as soon as the archiver can (operators, a gap). */
export async function requestBaseBackup(deps: Pick<Deps, "ddb" | "table" | "now">, clusterId: string): Promise<WalArchiveItem> {
  const archive = await getArchive(deps, clusterId);
  if (!archive) throw new Error(`cluster ${clusterId} has no WAL archive`);
  return updateArchive(deps, clusterId, { base_backup_due_at: iso(deps.now()), base_backup_reason: "operator" });
}

/**
 * The dispatcher's daily rule: an archive whose newest base backup (completed or started) is older
 * than today's `at` (UTC), once that time has passed, gets one due. Idempotent across ticks.
 */
export async function markDailyBaseBackupsDue(deps: Pick<Deps, "ddb" | "table" | "now" | "log">, at = DEFAULT_BASE_BACKUP_AT): Promise<number> {
  const now = deps.now();
  const [hh, mm] = at.split(":").map(Number) as [number, number];
  const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), hh, mm));
  if (now < today) return 0;
  let marked = 0;
  for (const archive of await listArchives(deps)) {
    if (!archive.enabled || archive.base_backup_due_at) continue;
    const newest = (await listBaseBackups(deps, archive.cluster_id)).find((b) => b.state !== "failed" && b.state !== "deleted");
    if (newest && Date.parse(newest.started_at) >= today.getTime()) continue;
    await updateArchive(deps, archive.cluster_id, { base_backup_due_at: iso(now), base_backup_reason: "daily" });
    marked++;
  }
  if (marked) deps.log.info("daily base backups due", { clusters: marked });
  return marked;
}
