import {
  getBackupForWork,
  markBackupCompleted,
  markBackupFailed,
  markBackupPending,
  markBackupRunning,
  recordBackupArtifact,
  recordBackupUpload,
  type BackupWorkItem,
} from "../backups/backups.ts";
import { iso, type Deps } from "../deps.ts";
import {
  claimJob,
  completeJob,
  failJob,
  getJobItem,
  lockedResourceFor,
  releaseClaim,
  retryJob,
  type JobItem,
  type RunReport,
} from "../jobs/jobs.ts";
import { acquireLock, releaseLock } from "../jobs/locks.ts";
import { enqueueJobs } from "../jobs/queue.ts";
import { getClusterConnection, getProject, type ClusterConnection } from "../orgs/orgs.ts";
import { redact, tail } from "../redact.ts";
import { WorkerFailure, classify, type ToolReport } from "./classify.ts";
import { abortUpload, deleteArtifact, dumpToS3, stampChecksum } from "./dump.ts";
import { emitBackupCompleted } from "./events.ts";
import { leaseVisibilitySeconds, setVisibility, startHeartbeat, type MessageContext } from "./heartbeat.ts";
import { backoffSeconds, jitter, workerOptions, type WorkerOptions } from "./options.ts";
import { dropThrowaway, throwawayDatabaseName, verifyBackup } from "./verify.ts";

export type { MessageContext } from "./heartbeat.ts";

/**
 * What became of one delivery. `ack: false` means "leave the message in the queue" (the handler
 * reports it as a batch item failure): it was returned with a delay and must not be deleted, or it
 * is poison (`rejected`) and must reach the dead-letter queue after the redrive count.
 */
export interface RunOutcome {
  status: "completed" | "failed" | "retrying" | "busy" | "ignored" | "rejected";
  ack: boolean;
  reason?: string;
}

/** A message arriving this much before the job is due is a stale duplicate (the due one is queued). */
const EARLY_SLACK_MS = 5_000;

/** The lock belongs to one attempt, so a stale attempt can neither renew nor release its successor's lock. */
const lockOwner = (job: Pick<JobItem, "id" | "attempts">) => `${job.id}#${job.attempts}`;
const lockResource = (job: JobItem) => job.locked_resource ?? lockedResourceFor(job.cluster_id, job.database_name);

const ignored = (reason: string): RunOutcome => ({ status: "ignored", ack: true, reason });

function toRunReport(report: ToolReport | undefined, fallbackStderr?: string): RunReport {
  if (!report) return { last_exit_code: null, last_stdout: null, last_stderr: fallbackStderr ?? null };
  return { last_exit_code: report.exitCode, last_stdout: report.stdout, last_stderr: report.stderr };
}

/**
 * Runs one `project.backup` job for one queue delivery: claim, lock, dump, verify, complete - or
 * classify the failure and retry or fail. Every step that could race another worker is a
 * conditional write, so duplicate and late deliveries are harmless: a job that is finished, or
 * running under a live lease, is acknowledged and left alone.
 *
 * @example
 * const outcome = await runJob(deps, "job_01j...", { receiptHandle, receiveCount: 1 });
 * if (!outcome.ack) reportBatchItemFailure();
 */
export async function runJob(deps: Deps, jobId: string, msg?: MessageContext, overrides: Partial<WorkerOptions> = {}): Promise<RunOutcome> {
  const o = workerOptions(overrides);
  const job = await getJobItem(deps, jobId);
  if (!job) {
    // Jobs are committed before their message is sent and this read is strongly consistent: a
    // message naming no job is poison. It is not acknowledged, so SQS redrives it to the DLQ.
    deps.log.warn("message for a job that does not exist; left for the dead-letter queue", { job_id: jobId });
    return { status: "rejected", ack: false, reason: "no such job" };
  }
  if (job.type !== "project.backup") throw new Error(`job ${jobId} is a ${job.type} job, which the backup worker does not run`);
  const now = deps.now().getTime();
  if (job.state === "completed" || job.state === "failed") {
    await settleBackup(deps, job);
    return ignored(`job already ${job.state}`);
  }
  // Same test as claimJob's condition (leases are stored to the second).
  if (job.state === "running" && job.lease_expires_at && job.lease_expires_at >= iso(deps.now())) return ignored("running under a live lease");
  if (job.state === "pending" && job.available_at && Date.parse(job.available_at) - now > EARLY_SLACK_MS) return ignored("not due yet");
  if (job.state === "running" && job.attempts >= job.max_attempts) return abandon(deps, job);

  const claimed = await claimJob(deps, job, deps.workerId, o.leaseMs);
  if (!claimed) return ignored("claimed by another worker");
  await setVisibility(deps, msg, leaseVisibilitySeconds(o));
  deps.log.info("job claimed", { job_id: job.id, attempt: claimed.attempts, worker_id: deps.workerId });

  const lock = { resource: lockResource(claimed), owner: lockOwner(claimed) };
  if (!(await acquireLock(deps, lock.resource, lock.owner, o.leaseMs))) return lockBusy(deps, claimed, msg, o);

  const abort = new AbortController();
  let lost: string | undefined;
  const heartbeat = startHeartbeat({
    deps,
    job: claimed,
    lock,
    msg,
    options: o,
    onLost: (why) => {
      lost = why;
      abort.abort();
    },
  });
  try {
    return await attempt(deps, claimed, msg, o, abort.signal, () => lost);
  } finally {
    await heartbeat.stop();
    await releaseLock(deps, lock.resource, lock.owner).catch((err: unknown) =>
      deps.log.warn("could not release the lock; its lease will lapse", { job_id: job.id, error: String(err) }),
    );
  }
}

/** One attempt under the lock. Never throws: every failure is recorded on the job and the backup. */
async function attempt(
  deps: Deps,
  job: JobItem,
  msg: MessageContext | undefined,
  o: WorkerOptions,
  signal: AbortSignal,
  lostClaim: () => string | undefined,
): Promise<RunOutcome> {
  let backup: BackupWorkItem | undefined;
  let conn: ClusterConnection | undefined;
  let uploaded = false;
  try {
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
    conn = await getClusterConnection(deps, project.cluster_id);

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

    await stampChecksum(deps.s3, deps.bucket, backup.backup_key, dump.sizeBytes, dump.metadata, dump.sha256);

    // The job's transition is the fence: only the claim's owner settles the backup.
    const done = await completeJob(deps, job, toRunReport(verified.report));
    if (!done) return ignored("the claim was lost before completion");
    try {
      const completed = await markBackupCompleted(deps, backup, { verified_at: iso(deps.now()), restore_ms: verified.restoreMs });
      if (completed) await emitBackupCompleted(deps, completed);
    } catch (err) {
      // The job is completed (it is the fence): this is no failure of the attempt. The message is
      // kept, and its next delivery brings the backup and its event in line (settleBackup).
      deps.log.warn("job completed but its backup is not settled yet; the next delivery settles it", { job_id: job.id, backup_id: backup.id, error: String(err) });
      if (msg) await setVisibility(deps, msg, backoffSeconds(o, 1));
      return { status: "completed", ack: !msg, reason: "backup not settled yet" };
    }
    deps.log.info("backup completed", {
      job_id: job.id,
      backup_id: backup.id,
      attempt: job.attempts,
      size_bytes: dump.sizeBytes,
      dump_ms: dump.dumpMs,
      restore_ms: verified.restoreMs,
      tables: Object.keys(dump.rowCounts).length,
    });
    return { status: "completed", ack: true };
  } catch (err) {
    const failure = classify(err);
    const why = lostClaim();
    if (why) {
      // Another worker owns the job now; what we started is aborted, what it does is its business.
      deps.log.warn("claim lost; attempt abandoned", { job_id: job.id, reason: why });
      return ignored(`claim lost: ${why}`);
    }
    return settleFailure(deps, job, backup, failure, { uploaded, msg, o, secrets: conn ? [conn.password] : [] });
  }
}

/** Records a classified failure: retry with backoff while attempts remain and it is transient, else fail. */
async function settleFailure(
  deps: Deps,
  job: JobItem,
  backup: BackupWorkItem | undefined,
  failure: WorkerFailure,
  ctx: { uploaded: boolean; msg: MessageContext | undefined; o: WorkerOptions; secrets: string[] },
): Promise<RunOutcome> {
  const error = redact(failure.message, ctx.secrets);
  const cause = failure.cause === undefined ? undefined : tail(redact(String((failure.cause as Error)?.message ?? failure.cause), ctx.secrets), 4096);
  const report = toRunReport(failure.report, cause);
  const dropArtifact = async () => {
    if (ctx.uploaded && backup) {
      await deleteArtifact(deps.s3, deps.bucket, backup.backup_key).catch((err: unknown) =>
        deps.log.warn("could not delete the failed attempt's artifact", { job_id: job.id, error: String(err) }),
      );
    }
  };
  const fields = { job_id: job.id, backup_id: backup?.id, attempt: job.attempts, classification: failure.classification, error, detail: cause };

  if (failure.classification === "transient" && job.attempts < job.max_attempts) {
    const delay = backoffSeconds(ctx.o, job.attempts);
    const retried = await retryJob(deps, job, error, new Date(deps.now().getTime() + delay * 1000), report);
    if (!retried) return ignored("the claim was lost before the retry");
    await dropArtifact();
    if (backup) await markBackupPending(deps, backup);
    deps.log.warn("backup attempt failed; will retry", { ...fields, retry_in_seconds: delay });
    return { status: "retrying", ack: await requeue(deps, job.id, delay, ctx.msg) };
  }
  const failed = await failJob(deps, job, error, failure.classification, report);
  if (!failed) return ignored("the claim was lost before the failure");
  await dropArtifact();
  if (backup) await markBackupFailed(deps, backup, { verificationError: error });
  deps.log.warn("backup failed", fields);
  return { status: "failed", ack: true };
}

/**
 * Schedules the job's next delivery in `delaySeconds`: a fresh message (its receive count starts
 * at zero, so waiting never pushes a job toward the dead-letter queue) and the current one
 * acknowledged; if sending fails, the current message is returned with that visibility instead.
 * Returns whether to acknowledge the current message.
 */
async function requeue(deps: Deps, jobId: string, delaySeconds: number, msg: MessageContext | undefined): Promise<boolean> {
  if (delaySeconds <= 900) {
    try {
      await enqueueJobs(deps, [jobId], delaySeconds);
      return true;
    } catch (err) {
      deps.log.warn("could not send the retry message; returning the current one", { job_id: jobId, error: String(err) });
    }
  }
  if (!msg) return true; // nothing to return; the job stays pending and due, for the reaper.
  await setVisibility(deps, msg, delaySeconds);
  return false;
}

/**
 * The database is being dumped by another job: give the claim back (the attempt is not spent) and
 * come back later. The message is returned with a delay while its receive count is low; from
 * receive `maxReceiveCount - 1` on it is replaced by a fresh delayed message, so that a job queued
 * behind long dumps never reaches the dead-letter queue (which stays for crashes and poison).
 */
async function lockBusy(deps: Deps, job: JobItem, msg: MessageContext | undefined, o: WorkerOptions): Promise<RunOutcome> {
  const delay = jitter(o.lockBusyDelaySeconds);
  const released = await releaseClaim(deps, job, new Date(deps.now().getTime() + delay * 1000));
  if (!released) return ignored("the claim was lost while the lock was busy");
  deps.log.info("database lock busy; job returned", { job_id: job.id, resource: lockResource(job), retry_in_seconds: delay, receive_count: msg?.receiveCount });
  if (msg && msg.receiveCount < o.maxReceiveCount - 1 && (await setVisibility(deps, msg, delay))) return { status: "busy", ack: false };
  return { status: "busy", ack: await requeue(deps, job.id, delay, msg) };
}

/**
 * A job whose worker died on its last attempt (running, lease lapsed, attempts exhausted): fail it
 * and clean up what the dead attempt may have left (lock, multipart upload, scratch database).
 */
async function abandon(deps: Deps, job: JobItem): Promise<RunOutcome> {
  const error = "The backup worker stopped responding during its last attempt.";
  const failed = await failJob(deps, job, error, "transient");
  if (!failed) return ignored("settled by another worker");
  deps.log.warn("backup failed: the last attempt's worker stopped responding", { job_id: job.id, attempt: job.attempts });
  await settleBackup(deps, failed);
  const backup = job.backup_id ? await getBackupForWork(deps, job.project_id, job.backup_id) : undefined;
  if (backup) {
    const conn = await getClusterConnection(deps, job.cluster_id).catch(() => undefined);
    if (conn) await dropThrowaway(conn, throwawayDatabaseName(backup.id));
  }
  return { status: "failed", ack: true };
}

/**
 * Brings the backup in line with its finished job. The job's transition commits first (it is the
 * fence), so a worker that died right after it leaves the backup pending/running; the next
 * delivery of the message repairs it. Also makes sure a completed backup's event exists.
 */
async function settleBackup(deps: Deps, job: JobItem): Promise<void> {
  if (!job.backup_id) return;
  const backup = await getBackupForWork(deps, job.project_id, job.backup_id);
  if (!backup) return;
  if (backup.state === "pending" || backup.state === "running") {
    if (job.state === "completed") {
      const completed = await markBackupCompleted(deps, backup, { verified_at: job.completed_at ?? iso(deps.now()), restore_ms: backup.restore_ms });
      if (completed) await emitBackupCompleted(deps, completed);
    } else {
      await abortUpload(deps.s3, deps.bucket, backup.backup_key, backup.upload_id);
      await markBackupFailed(deps, backup, { verificationError: job.error ?? "The backup job failed." });
    }
    await releaseLock(deps, lockResource(job), lockOwner(job));
  } else if (backup.state === "completed") {
    await emitBackupCompleted(deps, backup);
  }
}
