import {
  backupCompletedWrites,
  getBackupForWork,
  markBackupFailed,
  markBackupPending,
  markBackupRunning,
  recordBackupArtifact,
  recordBackupUpload,
  repairBackupCompleted,
  type BackupWorkItem,
} from "../backups/backups.ts";
import { iso, type Deps } from "../deps.ts";
import { completeJob, type JobItem } from "../jobs/jobs.ts";
import { releaseLock } from "../jobs/locks.ts";
import { getClusterConnection, getProject } from "../orgs/orgs.ts";
import { WorkerFailure } from "./classify.ts";
import { abortUpload, deleteArtifact, dumpToS3, stampChecksum } from "./dump.ts";
import { setVisibility } from "./heartbeat.ts";
import { ignored, lockOwner, lockResource, toRunReport, type Attempt, type JobRunner, type RunOutcome } from "./lifecycle.ts";
import { backoffSeconds } from "./options.ts";
import { closeQuietly, connect } from "./pgconn.ts";
import { dropThrowaway, throwawayDatabaseName, verifyBackup } from "./verify.ts";

/** `project.backup`: pg_dump to S3, verified by a restore into a throwaway database. */
export const backupRunner: JobRunner = {
  noun: "backup",
  attempt,
  settle: settleBackup,
  measure: (deps, job) => databaseSize(deps, job.cluster_id, job.database_name),
  async abandoned(deps, job) {
    await settleBackup(deps, job);
    const backup = job.backup_id ? await getBackupForWork(deps, job.project_id, job.backup_id) : undefined;
    if (backup) {
      const conn = await getClusterConnection(deps, job.cluster_id).catch(() => undefined);
      if (conn) await dropThrowaway(conn, throwawayDatabaseName(backup.id));
    }
  },
};

/** One attempt under the lock. Failures are thrown; the lifecycle records them on the job and calls back. */
async function attempt(a: Attempt): Promise<RunOutcome> {
  const { deps, job, msg, o, signal } = a;
  let backup: BackupWorkItem | undefined;
  let uploaded = false;
  a.onFailure(async ({ retrying, error }) => {
    if (uploaded && backup) {
      await deleteArtifact(deps.s3, deps.bucket, backup.backup_key).catch((err: unknown) =>
        deps.log.warn("could not delete the failed attempt's artifact", { job_id: job.id, error: String(err) }),
      );
    }
    if (!backup) return;
    if (retrying) await markBackupPending(deps, backup);
    else await markBackupFailed(deps, backup, { verificationError: error });
  });

  if (!job.backup_id) throw new WorkerFailure("permanent", "The job names no backup to make.");
  backup = await getBackupForWork(deps, job.project_id, job.backup_id);
  if (!backup) throw new WorkerFailure("permanent", "The backup record no longer exists.");
  const project = await getProject(deps, job.project_id);
  if (!project) throw new WorkerFailure("permanent", "The project no longer exists.");
  // A previous attempt that died mid-upload left its parts behind: abort them.
  await abortUpload(deps.s3, deps.bucket, backup.backup_key, backup.upload_id);
  const running = await markBackupRunning(deps, backup);
  if (!running) throw new WorkerFailure("permanent", "The backup was already settled.");
  backup = running;
  const conn = await getClusterConnection(deps, project.cluster_id);
  a.secrets.push(conn.password);

  o.hooks?.onDumpStart?.(job.id);
  const current = backup;
  const dump = await dumpToS3({
    s3: deps.s3,
    bucket: deps.bucket,
    key: backup.backup_key,
    conn,
    database: project.database_name,
    pgBinDirs: deps.pgBinDirs,
    partSizeBytes: o.partSizeBytes,
    uploadQueueSize: o.uploadQueueSize,
    lockWaitTimeoutMs: o.lockWaitTimeoutMs,
    signal,
    onUploadId: async (uploadId) => void (await recordBackupUpload(deps, current, uploadId)),
    metadata: { "backup-id": backup.id, "project-id": backup.project_id },
  }).finally(() => o.hooks?.onDumpEnd?.(job.id));
  uploaded = true;
  const recorded = await recordBackupArtifact(deps, backup, {
    size_bytes: dump.sizeBytes,
    sha256: dump.sha256,
    pg_dump_version: dump.tools.version,
    server_version: dump.serverVersion,
    row_counts: dump.rowCounts,
    dump_ms: dump.dumpMs,
  });
  if (!recorded) throw new WorkerFailure("permanent", "The backup was settled while it was being written.");
  backup = recorded;
  deps.log.info("backup dumped", { job_id: job.id, backup_id: backup.id, size_bytes: dump.sizeBytes, dump_ms: dump.dumpMs, tables: Object.keys(dump.rowCounts).length });

  await o.hooks?.beforeVerify?.({ s3: deps.s3, bucket: deps.bucket, key: backup.backup_key });
  const verified = await verifyBackup({
    s3: deps.s3,
    bucket: deps.bucket,
    key: backup.backup_key,
    expectedSha256: dump.sha256,
    expectedRowCounts: dump.rowCounts,
    conn: o.verificationServer ?? conn,
    backupId: backup.id,
    tools: dump.tools,
    signal,
  });
  deps.log.info("backup verified", { job_id: job.id, backup_id: backup.id, restore_ms: verified.restoreMs });

  await stampChecksum(deps.s3, deps.bucket, backup.backup_key, dump.sizeBytes, dump.metadata, dump.sha256);

  // One transaction: the job (its transition is the fence: only the claim's owner settles the
  // backup), the backup, and their `job.completed` and `backup.completed` outbox events.
  const done = await completeJob(deps, job, toRunReport(verified.report), backupCompletedWrites(deps, backup, { verified_at: iso(deps.now()), restore_ms: verified.restoreMs }));
  if (!done) return ignored("the claim was lost before completion");
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
async function settleBackup(deps: Deps, job: JobItem): Promise<void> {
  if (!job.backup_id) return;
  const backup = await getBackupForWork(deps, job.project_id, job.backup_id);
  if (!backup) return;
  if (backup.state === "pending" || backup.state === "running") {
    if (job.state === "completed") {
      await repairBackupCompleted(deps, backup, { verified_at: job.completed_at ?? iso(deps.now()), restore_ms: backup.restore_ms });
    } else {
      await abortUpload(deps.s3, deps.bucket, backup.backup_key, backup.upload_id);
      await markBackupFailed(deps, backup, { verificationError: job.error ?? "The backup job failed." });
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
