import { iso, type Deps } from "../deps.ts";
import {
  claimJob,
  failJob,
  lockedResourceFor,
  releaseClaim,
  retryJob,
  type JobItem,
  type RunReport,
} from "../jobs/jobs.ts";
import { acquireLock, releaseLock } from "../jobs/locks.ts";
import { enqueueJobs } from "../jobs/queue.ts";
import { redact, tail } from "../redact.ts";
import { classify, type ToolReport, type WorkerFailure } from "./classify.ts";
import { leaseVisibilitySeconds, setVisibility, startHeartbeat, type MessageContext } from "./heartbeat.ts";
import { launchIfLarge } from "./offload.ts";
import { backoffSeconds, jitter, type WorkerOptions } from "./options.ts";

/**
 * What became of one delivery. `ack: false` means "leave the message in the queue" (the handler
 * reports it as a batch item failure): it was returned with a delay and must not be deleted, or it
 * is poison (`rejected`) and must reach the dead-letter queue after the redrive count.
 */
export interface RunOutcome {
  status: "completed" | "failed" | "retrying" | "busy" | "ignored" | "rejected" | "launched";
  ack: boolean;
  reason?: string;
}

/** One attempt of a job, as its runner sees it: the claim and the database lock are held. */
export interface Attempt {
  deps: Deps;
  job: JobItem;
  msg: MessageContext | undefined;
  o: WorkerOptions;
  /** Aborted when the claim or the lock is lost (another worker took over after a stall), or could not be renewed in time. */
  signal: AbortSignal;
  /** Stops the attempt: it no longer owns the job (a fenced write was refused). */
  abort(why: string): void;
  /** Secrets the attempt handled (passwords): redacted from the failure recorded on the job. */
  secrets: string[];
  /**
   * Cleanup after a failed attempt, run once the job's transition (back to pending, or failed)
   * has committed: the job is the fence, so only the claim's owner touches the job's records.
   */
  onFailure(fn: (f: { retrying: boolean; error: string }) => Promise<void>): void;
}

/**
 * One job type's work. The claim, the database lock, the heartbeat, retries with backoff and the
 * classification of failures are shared (runClaimed); a runner says only what its job does.
 */
export interface JobRunner {
  /** What the job makes, for log lines: "backup", "restore". */
  noun: string;
  /** One attempt under the claim and the lock. Throws to fail it (the error is classified). */
  attempt(a: Attempt): Promise<RunOutcome>;
  /** A delivery of a job that is already completed or failed: bring its records in line. */
  settle?(deps: Deps, job: JobItem): Promise<void>;
  /** The job's last attempt died (lease lapsed, no attempts left) and it was just failed: clean up. */
  abandoned?(deps: Deps, job: JobItem, o: WorkerOptions): Promise<void>;
  /**
   * Bytes the job will move (pg_database_size for a dump, the artifact's size for a restore): above
   * the offload threshold it runs as a task (offload.ts). A runner without it always runs here.
   */
  measure?(deps: Deps, job: JobItem): Promise<number>;
}

/** A message arriving this much before the job is due is a stale duplicate (the due one is queued). */
const EARLY_SLACK_MS = 5_000;

/** The lock belongs to one attempt, so a stale attempt can neither renew nor release its successor's lock. */
export const lockOwner = (job: Pick<JobItem, "id" | "attempts">) => `${job.id}#${job.attempts}`;
export const lockResource = (job: JobItem) => job.locked_resource ?? lockedResourceFor(job.cluster_id, job.database_name);

export const ignored = (reason: string): RunOutcome => ({ status: "ignored", ack: true, reason });

export function toRunReport(report: ToolReport | undefined, fallbackStderr?: string): RunReport {
  if (!report) return { last_exit_code: null, last_stdout: null, last_stderr: fallbackStderr ?? null };
  return { last_exit_code: report.exitCode, last_stdout: report.stdout, last_stderr: report.stderr };
}

/**
 * Runs one job for one queue delivery with `runner`: claim, lock, attempt - or classify the failure
 * and retry or fail. Every step that could race another worker is a conditional write, so
 * duplicate and late deliveries are harmless: a job that is finished, or running under a live
 * lease, is acknowledged and left alone.
 */
export async function runClaimed(deps: Deps, runner: JobRunner, job: JobItem, msg: MessageContext | undefined, o: WorkerOptions): Promise<RunOutcome> {
  const now = deps.now().getTime();
  if (job.state === "completed" || job.state === "failed") {
    await runner.settle?.(deps, job);
    return ignored(`job already ${job.state}`);
  }
  // Same test as claimJob's condition (leases are stored to the second).
  if (job.state === "running" && job.lease_expires_at && job.lease_expires_at >= iso(deps.now())) return ignored("running under a live lease");
  if (job.state === "pending" && job.available_at && Date.parse(job.available_at) - now > EARLY_SLACK_MS) return ignored("not due yet");
  if (job.state === "running" && job.attempts >= job.max_attempts) return abandon(deps, runner, job, o);

  if (o.offload && runner.measure) {
    const launched = await launchIfLarge(deps, runner, job, msg, o, o.offload);
    if (launched) return launched;
  }

  const claimed = await claimJob(deps, job, deps.workerId, o.leaseMs);
  if (!claimed) return ignored("claimed by another worker");
  return runAttempt(deps, runner, claimed, msg, o);
}

/**
 * One attempt of a job this process has claimed (the worker's claim, or the claim a task took
 * over from the worker that launched it): lock, heartbeat, the runner's attempt, and the failure's
 * classification, retry or failure.
 */
export async function runAttempt(deps: Deps, runner: JobRunner, claimed: JobItem, msg: MessageContext | undefined, o: WorkerOptions): Promise<RunOutcome> {
  const job = claimed;
  await setVisibility(deps, msg, leaseVisibilitySeconds(o));
  deps.log.info("job claimed", { job_id: job.id, backup_id: job.backup_id, type: job.type, state: claimed.state, attempt: claimed.attempts, worker_id: claimed.claimed_by });

  const lock = { resource: lockResource(claimed), owner: lockOwner(claimed) };
  if (!(await acquireLock(deps, lock.resource, lock.owner, o.leaseMs))) return lockBusy(deps, claimed, msg, o);

  const abort = new AbortController();
  let lost: string | undefined;
  const stop = (why: string) => {
    lost ??= why;
    abort.abort();
  };
  const heartbeat = startHeartbeat({ deps, job: claimed, lock, msg, options: o, onLost: stop });
  const cleanups: ((f: { retrying: boolean; error: string }) => Promise<void>)[] = [];
  const attempt: Attempt = { deps, job: claimed, msg, o, signal: abort.signal, abort: stop, secrets: [], onFailure: (fn) => void cleanups.push(fn) };
  try {
    const outcome = await runner.attempt(attempt);
    if (lost && outcome.status !== "completed") return ignored(`claim lost: ${lost}`);
    return outcome;
  } catch (err) {
    const failure = classify(err);
    if (lost) {
      // Another worker owns the job now; what we started is aborted, what it does is its business.
      deps.log.warn("claim lost; attempt abandoned", { job_id: job.id, reason: lost });
      return ignored(`claim lost: ${lost}`);
    }
    return settleFailure(attempt, runner, failure, cleanups);
  } finally {
    await heartbeat.stop();
    await releaseLock(deps, lock.resource, lock.owner).catch((err: unknown) =>
      deps.log.warn("could not release the lock; its lease will lapse", { job_id: job.id, error: String(err) }),
    );
  }
}

/** Records a classified failure: retry with backoff while attempts remain and it is transient, else fail. */
async function settleFailure(
  a: Attempt,
  runner: JobRunner,
  failure: WorkerFailure,
  cleanups: ((f: { retrying: boolean; error: string }) => Promise<void>)[],
): Promise<RunOutcome> {
  const { deps, job, o, msg } = a;
  const error = redact(failure.message, a.secrets);
  const cause = failure.cause === undefined ? undefined : tail(redact(String((failure.cause as Error)?.message ?? failure.cause), a.secrets), 4096);
  const report = toRunReport(failure.report, cause);
  const fields = { job_id: job.id, type: job.type, attempt: job.attempts, classification: failure.classification, error, detail: cause };
  const cleanup = async (retrying: boolean) => {
    for (const fn of cleanups) {
      await fn({ retrying, error }).catch((err: unknown) => deps.log.warn("cleanup after a failed attempt failed", { job_id: job.id, error: String(err) }));
    }
  };

  if (failure.classification === "transient" && job.attempts < job.max_attempts) {
    const delay = backoffSeconds(o, job.attempts);
    const retried = await retryJob(deps, job, error, new Date(deps.now().getTime() + delay * 1000), report);
    if (!retried) return ignored("the claim was lost before the retry");
    await cleanup(true);
    deps.log.warn(`${runner.noun} attempt failed; will retry`, { ...fields, state: "pending", retry_in_seconds: delay });
    return { status: "retrying", ack: await requeue(deps, job.id, delay, msg) };
  }
  const failed = await failJob(deps, job, error, failure.classification, report);
  if (!failed) return ignored("the claim was lost before the failure");
  await cleanup(false);
  deps.log.warn(`${runner.noun} failed`, { ...fields, state: "failed" });
  return { status: "failed", ack: true };
}

/**
 * Schedules the job's next delivery in `delaySeconds`: a fresh message (its receive count starts
 * at zero, so waiting never pushes a job toward the dead-letter queue) and the current one
 * acknowledged; if sending fails, the current message is returned with that visibility instead.
 * Returns whether to acknowledge the current message.
 */
export async function requeue(deps: Deps, jobId: string, delaySeconds: number, msg: MessageContext | undefined): Promise<boolean> {
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
 * The database is held by another job: give the claim back (the attempt is not spent) and come
 * back later. The message is returned with a delay while its receive count is low; from receive
 * `maxReceiveCount - 1` on it is replaced by a fresh delayed message, so that a job queued behind
 * long dumps never reaches the dead-letter queue (which stays for crashes and poison).
 */
async function lockBusy(deps: Deps, job: JobItem, msg: MessageContext | undefined, o: WorkerOptions): Promise<RunOutcome> {
  const delay = jitter(o.lockBusyDelaySeconds);
  const released = await releaseClaim(deps, job, new Date(deps.now().getTime() + delay * 1000));
  if (!released) return ignored("the claim was lost while the lock was busy");
  deps.log.info("database lock busy; job returned", { job_id: job.id, state: "pending", resource: lockResource(job), retry_in_seconds: delay, receive_count: msg?.receiveCount });
  if (msg && msg.receiveCount < o.maxReceiveCount - 1 && (await setVisibility(deps, msg, delay))) return { status: "busy", ack: false };
  return { status: "busy", ack: await requeue(deps, job.id, delay, msg) };
}

/**
 * A job whose worker died on its last attempt (running, lease lapsed, attempts exhausted): fail it
 * and let the runner clean up what the dead attempt may have left.
 */
async function abandon(deps: Deps, runner: JobRunner, job: JobItem, o: WorkerOptions): Promise<RunOutcome> {
  const error = `The ${runner.noun} worker stopped responding during its last attempt.`;
  const failed = await failJob(deps, job, error, "transient");
  if (!failed) return ignored("settled by another worker");
  deps.log.warn(`${runner.noun} failed: the last attempt's worker stopped responding`, { job_id: job.id, attempt: job.attempts });
  await runner.abandoned?.(deps, failed, o);
  return { status: "failed", ack: true };
}
