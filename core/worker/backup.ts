import {
  backupCompletedWrites,
  getBackupForWork,
  markBackupPending,
  markBackupRunning,
  recordBackupArtifact,
  recordBackupUpload,
  repairBackupCompleted,
  type BackupAttempt,
  type BackupWorkItem,
} from "../backups/backups.ts";
import { iso, type Deps } from "../deps.ts";
import { completeJob, type JobItem } from "../jobs/jobs.ts";
import { releaseLock } from "../jobs/locks.ts";
import { getClusterConnection, getProject } from "../orgs/orgs.ts";
import { WorkerFailure } from "../pg/classify.ts";
import { failBackupForGood, scratchNames } from "../backups/cleanup.ts";
import { abortUpload, deleteArtifact, stampChecksum } from "../aws/artifacts.ts";
import type { DumpResult } from "../pg/dump.ts";
import { dumpForJob, type ArtifactFields } from "./dump-job.ts";
import { StreamVerification } from "../pg/stream-verify.ts";
import { ignored, lockOwner, lockResource, toRunReport, type Attempt, type JobRunner, type RunOutcome } from "./runner.ts";
import type { WorkerOptions } from "./options.ts";
import { closeQuietly, connect } from "../pg/pgconn.ts";
import { dropScratchDatabases } from "../pg/scratch.ts";
import type { VerifyResult } from "../pg/verify.ts";

/** `project.backup`: pg_dump to S3, verified by a restore into a throwaway database (run as the archive streams; core/pg/stream-verify.ts). */
export const backupRunner: JobRunner = {
  noun: "backup",
  attempt,
  settle: (deps, job) => settleBackup(deps, job),
  measure: (deps, job) => databaseSize(deps, job.cluster_id, job.database_name),
  // The last attempt died: the same cleanup as every other path that fails a backup for good.
  abandoned: (deps, job, o) => settleBackup(deps, job, o),
};

/** A refused fenced write: a newer attempt owns the backup (this one lost its lease without noticing). */
const superseded = (a: Attempt) => {
  a.abort(`a newer attempt than ${a.job.attempts} owns the backup`);
  return new WorkerFailure("transient", "The attempt was superseded by a newer one.");
};

/** One attempt under the lock. Failures are thrown; the lifecycle records them on the job and calls back. */
async function attempt(a: Attempt): Promise<RunOutcome> {
  const { deps, job, o, signal } = a;
  let backup: BackupWorkItem | undefined;
  let uploadId: string | undefined;
  let uploaded = false;
  // Runs only after the job's transition committed (the fence): this attempt still owned the job.
  a.onFailure(async ({ retrying, error }) => {
    if (!backup) return;
    if (!retrying) {
      await failBackupForGood(deps, backup, { verificationError: error, attempts: job.attempts, servers: o.verificationServer ? [o.verificationServer] : [] });
      return;
    }
    await abortUpload(deps.s3, deps.bucket, backup.backup_key, uploadId);
    if (uploaded) {
      await deleteArtifact(deps.s3, deps.bucket, backup.backup_key).catch((err: unknown) =>
        deps.log.warn("could not delete the failed attempt's artifact", { job_id: job.id, error: String(err) }),
      );
    }
    await markBackupPending(deps, me);
  });

  if (!job.backup_id) throw new WorkerFailure("permanent", "The job names no backup to make.");
  const me: BackupAttempt = { backup: { project_id: job.project_id, id: job.backup_id, job_id: job.id }, attempt: job.attempts };
  backup = await getBackupForWork(deps, job.project_id, job.backup_id);
  if (!backup) throw new WorkerFailure("permanent", "The backup record no longer exists.");
  const project = await getProject(deps, job.project_id);
  if (!project) throw new WorkerFailure("permanent", "The project no longer exists.");
  const running = await markBackupRunning(deps, me, { verifyClusterId: o.verificationClusterId ?? null });
  if (!running) {
    const now = await getBackupForWork(deps, job.project_id, job.backup_id);
    if (now && (now.attempt ?? 0) >= job.attempts && (now.state === "pending" || now.state === "running")) throw superseded(a);
    throw new WorkerFailure("permanent", "The backup was already settled.");
  }
  backup = running;
  // Older attempts' uploads (one that died, or one that lost its lease and has not noticed yet):
  // abort them, now that their writes to the backup are refused.
  for (const id of new Set([...(running.upload_ids ?? []), ...(running.upload_id ? [running.upload_id] : [])])) {
    await abortUpload(deps.s3, deps.bucket, running.backup_key, id);
  }
  const conn = await getClusterConnection(deps, project.cluster_id);
  a.secrets.push(conn.password);
  // ...and their scratch databases (an attempt killed mid-restore leaves its own): best effort,
  // the cleanup of a failed backup drops them again.
  if (job.attempts > 1) {
    const older = scratchNames(backup.id, job.attempts - 1);
    for (const server of o.verificationServer ? [o.verificationServer, conn] : [conn]) {
      await dropScratchDatabases(server, older).catch((err: unknown) =>
        deps.log.warn("could not drop an older attempt's scratch database", { job_id: job.id, error: String(err) }),
      );
    }
  }

  // The verification restore reads the archive as it is written (core/pg/stream-verify.ts); it is dropped whatever happens.
  const verification = new StreamVerification({
    s3: deps.s3,
    bucket: deps.bucket,
    conn: o.verificationServer ?? conn,
    backupId: backup.id,
    attempt: job.attempts,
    signal,
  });
  let dump: DumpResult;
  let verified: VerifyResult;
  try {
    let artifact: ArtifactFields;
    ({ dump, artifact } = await dumpForJob(a, {
      key: backup.backup_key,
      conn,
      database: project.database_name,
      countRows: true,
      openSink: (tools) => verification.open(tools),
      onUploadId: async (id) => {
        uploadId = id;
        // Refused: a newer attempt owns the backup; stop (the abort also aborts this upload).
        if (!(await recordBackupUpload(deps, me, id))) superseded(a);
      },
      metadata: { "backup-id": backup.id, "project-id": backup.project_id },
    }));
    uploaded = true;
    const recorded = await recordBackupArtifact(deps, me, { ...artifact, row_counts: dump.rowCounts, dump_ms: dump.dumpMs });
    if (!recorded) throw superseded(a);
    backup = recorded;
    deps.log.info("backup dumped", {
      job_id: job.id,
      backup_id: backup.id,
      size_bytes: dump.sizeBytes,
      dump_ms: dump.dumpMs,
      tables: Object.keys(dump.rowCounts).length,
      // Counted from the archive is the rule; only the fallback (a count in the snapshot) is news.
      ...(dump.rowCountsFrom === "archive" ? {} : { row_counts_from: dump.rowCountsFrom }),
    });

    await o.hooks?.beforeVerify?.({ s3: deps.s3, bucket: deps.bucket, key: backup.backup_key });
    if (signal.aborted) throw new WorkerFailure("transient", "The backup was interrupted.");
    verified = await verification.finish({ key: backup.backup_key, sha256: dump.sha256, rowCounts: dump.rowCounts });
  } finally {
    await verification.close();
  }
  deps.log.info("backup verified", { job_id: job.id, backup_id: backup.id, restore_ms: verified.restoreMs });

  // One transaction: the job (its transition is the fence: only the claim's owner settles the
  // backup), the backup, and their `job.completed` and `backup.completed` outbox events.
  const done = await completeJob(
    deps,
    job,
    toRunReport(verified.report),
    backupCompletedWrites(deps, backup, { verified_at: iso(deps.now()), restore_ms: verified.restoreMs }),
  );
  if (!done) return ignored("the claim was lost before completion");
  // After the fence, so that only the attempt that completed the job ever rewrites the object
  // (a stale attempt's stamp could otherwise land on a newer attempt's artifact). Metadata only:
  // the backup record keeps the SHA-256 either way.
  await stampChecksum(deps.s3, deps.bucket, backup.backup_key, dump.sizeBytes, dump.metadata, dump.sha256).catch((err: unknown) =>
    deps.log.warn("could not stamp the SHA-256 on the artifact's metadata (the backup record has it)", { job_id: job.id, error: String(err) }),
  );
  await o.hooks?.afterComplete?.(job.id);
  deps.log.info("backup completed", {
    job_id: job.id,
    backup_id: backup.id,
    state: "completed",
    attempt: job.attempts,
    size_bytes: dump.sizeBytes,
    dump_ms: dump.dumpMs,
    restore_ms: verified.restoreMs,
    tables: Object.keys(dump.rowCounts).length,
  });
  return { status: "completed", ack: true };
}

/**
 * Brings the backup in line with its finished job. A completion commits the job, the backup and
 * their events in one transaction; a failure commits the job (the fence, with its `job.failed`
 * event) before the backup, so a worker that died between the two (or a worker of an older
 * version, which completed in two writes) leaves the backup pending/running: the next delivery of
 * the message repairs it, with the backup's event in the repair's own transaction.
 */
async function settleBackup(deps: Deps, job: JobItem, o?: WorkerOptions): Promise<void> {
  if (!job.backup_id) return;
  const backup = await getBackupForWork(deps, job.project_id, job.backup_id);
  if (!backup) return;
  if (backup.state === "pending" || backup.state === "running") {
    if (job.state === "completed") {
      await repairBackupCompleted(deps, backup, { verified_at: job.completed_at ?? iso(deps.now()), restore_ms: backup.restore_ms });
    } else {
      await failBackupForGood(deps, backup, {
        verificationError: job.error ?? "The backup job failed.",
        attempts: job.attempts,
        servers: o?.verificationServer ? [o.verificationServer] : [],
      });
    }
    await releaseLock(deps, lockResource(job), lockOwner(job));
  }
}

/** `pg_database_size` of the database a dump or export reads: what decides worker or task. */
export async function databaseSize(deps: Deps, clusterId: string, database: string): Promise<number> {
  const conn = await getClusterConnection(deps, clusterId);
  const client = await connect(conn, database);
  try {
    const { rows } = await client.query<{ bytes: string }>("SELECT pg_database_size(current_database())::text AS bytes");
    return Number(rows[0]!.bytes);
  } finally {
    await closeQuietly(client);
  }
}
