import type pg from "pg";
import { iso, type Deps } from "../deps.ts";
import { completeJob, type JobItem } from "../jobs/jobs.ts";
import { WorkerFailure } from "../pg/classify.ts";
import { copyDatabase } from "../pg/copy-database.ts";
import { closeQuietly, connect, countRows, listTables, type ClusterConnection } from "../pg/pgconn.ts";
import { hasServerBinary, startRecoveryInstance, type RecoveryInstance } from "../pg/recovery.ts";
import { dropScratchDatabases } from "../pg/scratch.ts";
import { createThrowaway } from "../pg/verify.ts";
import { getClusterConnection } from "../orgs/orgs.ts";
import { redact } from "../redact.ts";
import { drillTime, recordDrillResult, type DrillResult } from "../wal/drills.ts";
import { listBaseBackups, openBaseBackup, restorableWindow } from "../wal/archive.ts";
import { baseBackupForTime, isUsable } from "../wal/window.ts";
import { archiveWalSource, asFailure } from "../wal/recover.ts";
import type { WorkerOptions } from "./options.ts";
import type { Attempt, JobRunner, RunOutcome } from "./runner.ts";

/**
 * `cluster.pitr_drill`, the service's own daily proof of a cluster's archive (core/wal/drills.ts):
 * a random time of the window is restored in a recovery instance (the whole cluster: every
 * database's files come out of the base backup and through replay), every database of that time
 * is opened and its tables listed, one of them (at random) is copied into a scratch database on
 * the verification cluster and every table's rows counted on both sides, and the scratch database
 * is dropped. Never on a customer's cluster: without a verification cluster the copy is counted in
 * the instance itself. The outcome is the cluster's `last_drill`; a failure is also the job's.
 */
export const drillRunner: JobRunner = {
  noun: "pitr drill",
  attempt,
  measure: drillSize,
  abandoned: async (deps, job, o) => {
    await dropScratch(o, job, job.attempts);
    await record(deps, job, {
      ok: false,
      error: "The drill's worker stopped responding during its last attempt.",
      restore_time: iso(deps.now()),
      seconds: secondsSince(job.started_at, deps),
    });
  },
};

/** `capydb_drill_<job ulid>_<attempt>`: every attempt's is known, so a later one (or the abandonment) drops an older one's. */
export const drillScratchName = (jobId: string, attempt: number) => `capydb_drill_${jobId.replace(/^job_/, "")}_${attempt}`;

const secondsSince = (startedAt: string | null, deps: Pick<Deps, "now">) =>
  startedAt ? Math.max(0, Math.round((deps.now().getTime() - Date.parse(startedAt)) / 100) / 10) : 0;

async function dropScratch(o: WorkerOptions, job: JobItem, attempts: number): Promise<void> {
  if (!o.verificationServer) return;
  const names = Array.from({ length: attempts }, (_, i) => drillScratchName(job.id, i + 1));
  await dropScratchDatabases(o.verificationServer, names).catch(() => undefined);
}

async function record(
  deps: Deps,
  job: JobItem,
  r: Pick<DrillResult, "ok" | "error" | "restore_time" | "seconds"> & Partial<DrillResult>,
): Promise<DrillResult> {
  const result: DrillResult = {
    database: null,
    databases: null,
    tables: null,
    rows: null,
    base_backup_id: null,
    wal_segments: null,
    checked_on: null,
    ...r,
    at: iso(deps.now()),
    job_id: job.id,
  };
  await recordDrillResult(deps, job.cluster_id, result);
  deps.log[result.ok ? "info" : "error"](result.ok ? "pitr drill passed" : "pitr drill failed", {
    job_id: job.id,
    cluster_id: job.cluster_id,
    restore_time: result.restore_time,
    seconds: result.seconds,
    database: result.database,
    tables: result.tables,
    rows: result.rows,
    error: result.error,
  });
  return result;
}

/** The databases of that time a drill can open: not templates, not a restore check's scratch database. */
async function databasesThen(inst: RecoveryInstance): Promise<string[]> {
  let c: pg.Client | undefined;
  try {
    c = await connect(inst.conn, "postgres");
    const { rows } = await c.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate AND datname NOT LIKE 'capydb\\_verify\\_%' AND datname NOT LIKE 'capydb\\_drill\\_%' ORDER BY oid",
    );
    return rows.map((r) => r.datname);
  } finally {
    await closeQuietly(c);
  }
}

/** Opens a database of the instance and lists its tables (catalog reads); counts their rows when asked. */
async function openAndCount(conn: ClusterConnection, database: string, rows: boolean): Promise<{ tables: number; rowCounts?: Record<string, number> }> {
  let c: pg.Client | undefined;
  try {
    c = await connect(conn, database);
    const tables = await listTables(c);
    return { tables: tables.length, ...(rows ? { rowCounts: await countRows(c, tables) } : {}) };
  } catch (err) {
    throw new WorkerFailure("permanent", `The database "${database}" of the restored cluster could not be opened: ${(err as Error).message}`, { cause: err });
  } finally {
    await closeQuietly(c);
  }
}

async function attempt(a: Attempt): Promise<RunOutcome> {
  const { deps, job, o, signal } = a;
  const started = Date.now();
  let restoreTime: Date | undefined;
  const seconds = () => Math.round((Date.now() - started) / 100) / 10;
  // The verdict of a drill that fails for good is the cluster's last drill too (after the job's
  // own transition committed: only the attempt that owns the job writes it).
  a.onFailure(async ({ retrying, error }) => {
    if (retrying) return;
    await record(deps, job, { ok: false, error, restore_time: restoreTime?.toISOString() ?? iso(deps.now()), seconds: seconds() });
  });
  if (o.verificationServer) {
    a.secrets.push(o.verificationServer.password);
    if (job.attempts > 1) await dropScratch(o, job, job.attempts - 1);
  }

  const window = await restorableWindow(deps, job.cluster_id);
  restoreTime = drillTime(window);
  if (!restoreTime) throw new WorkerFailure("permanent", "The cluster's WAL archive has nothing restorable to drill.");
  const base = baseBackupForTime(window, window.baseBackups, restoreTime);
  if (!base) throw new WorkerFailure("permanent", `No base backup restores ${restoreTime.toISOString()}.`);
  const time = restoreTime;

  let inst: RecoveryInstance | undefined;
  const scratch = drillScratchName(job.id, job.attempts);
  let scratchMade = false;
  try {
    inst = await startRecoveryInstance({
      baseBackup: () => openBaseBackup(deps, base),
      wal: archiveWalSource(deps, job.cluster_id),
      target: { time },
      // The whole cluster: the drill proves every database's files, not one project's, and has
      // PostgreSQL's pg_verifybackup check the copy (the pipeline checks the stream as it goes).
      verifyWithPgVerifybackup: true,
      user: (await instanceUser(deps, job.cluster_id)) ?? "postgres",
      pgBinDirs: deps.pgBinDirs,
      signal,
    }).catch((err: unknown) => {
      throw asFailure(err);
    });
    const databases = await databasesThen(inst);
    if (!databases.length) throw new WorkerFailure("permanent", `The cluster restored to ${time.toISOString()} has no database to open.`);
    let tables = 0;
    for (const db of databases) tables += (await openAndCount(inst.conn, db, false)).tables;
    // A project's database rather than `postgres` or a preview (capydb_pvw_...) when there is one.
    const projects = databases.filter((d) => d !== "postgres" && !d.startsWith("capydb_"));
    const users = projects.length ? projects : databases.filter((d) => d !== "postgres");
    const chosen = (users.length ? users : databases)[Math.floor(Math.random() * (users.length || databases.length))]!;

    let rowCounts: Record<string, number>;
    if (o.verificationServer) {
      scratchMade = true;
      await createThrowaway(o.verificationServer, scratch);
      const copied = await copyDatabase({
        source: inst.conn,
        sourceDatabase: chosen,
        sourceMajor: inst.major,
        target: o.verificationServer,
        targetDatabase: scratch,
        pgBinDirs: deps.pgBinDirs,
        signal,
        failed: (message, report, cause) => new WorkerFailure("permanent", message, { report, cause }),
      });
      rowCounts = copied.rowCounts;
    } else {
      rowCounts = (await openAndCount(inst.conn, chosen, true)).rowCounts!;
    }
    const rows = Object.values(rowCounts).reduce((n, v) => n + v, 0);
    const result = await record(deps, job, {
      ok: true,
      error: null,
      restore_time: time.toISOString(),
      seconds: seconds(),
      database: chosen,
      databases: databases.length,
      tables,
      rows,
      base_backup_id: base.id,
      wal_segments: inst.wal.fetched,
      checked_on: o.verificationServer ? "verification_cluster" : "recovery_instance",
    });
    const summary =
      `drill of ${time.toISOString()} from base backup ${base.id}: ${databases.length} database(s), ${tables} table(s) opened; ` +
      `${chosen} copied${o.verificationServer ? " into a scratch database on the verification cluster" : ""}, ${Object.keys(rowCounts).length} table(s), ${rows} row(s) counted; ${result.seconds} s`;
    const done = await completeJob(deps, job, { last_exit_code: 0, last_stdout: redact(summary, a.secrets), last_stderr: null });
    if (!done) return { status: "ignored", ack: true, reason: "the claim was lost before the completion" };
    return { status: "completed", ack: true };
  } finally {
    await inst?.stop();
    if (scratchMade && o.verificationServer) await dropScratchDatabases(o.verificationServer, [scratch]).catch(() => undefined);
  }
}

/** The role the instance is entered as: the cluster's own user, which the backup has (the private socket trusts it). */
async function instanceUser(deps: Deps, clusterId: string): Promise<string | undefined> {
  return getClusterConnection(deps, clusterId)
    .then((c) => c.user)
    .catch(() => undefined);
}

/**
 * Bytes the drill moves, for the worker-or-task decision: its base backup's tar (the newest
 * usable one, an estimate: the time is drawn when it runs). Where no PostgreSQL server binary is
 * installed (a Lambda), more than any threshold: it then always runs as the task.
 */
async function drillSize(deps: Deps, job: JobItem): Promise<number> {
  if (!hasServerBinary(deps.pgBinDirs)) return Number.MAX_SAFE_INTEGER;
  const base = (await listBaseBackups(deps, job.cluster_id)).filter(isUsable).sort((x, y) => Date.parse(y.started_at) - Date.parse(x.started_at))[0];
  return base?.raw_bytes ?? base?.size_bytes ?? 0;
}
