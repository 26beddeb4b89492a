import type { Deps } from "../deps.ts";
import { lockedResourceFor, type JobItem, type RunReport } from "../jobs/jobs.ts";
import { enqueueJobs } from "../jobs/queue.ts";
import type { ToolReport } from "../pg/classify.ts";
import { setVisibility, type MessageContext } from "./heartbeat.ts";
import type { WorkerOptions } from "./options.ts";

/*
 * The contract between the lifecycle (lifecycle.ts, offload.ts) and one runner per job type, and
 * the small outcomes both sides build. Apart from lifecycle.ts so that the runners and the offload
 * decision depend on it without depending on each other.
 */

/**
 * What became of one delivery. `ack: false` means "leave the message in the queue" (the handler
 * reports it as a batch item failure): it was returned with a delay and must not be deleted, or it
 * is poison (`rejected`) and must reach the dead-letter queue after the redrive count.
 */
export interface RunOutcome {
  status: "completed" | "failed" | "retrying" | "busy" | "waiting" | "ignored" | "rejected" | "launched";
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

/** The lock belongs to one attempt, so a stale attempt can neither renew nor release its successor's lock. */
export const lockOwner = (job: Pick<JobItem, "id" | "attempts">) => `${job.id}#${job.attempts}`;
export const lockResource = (job: JobItem) => job.locked_resource ?? lockedResourceFor(job.cluster_id, job.database_name);

export const ignored = (reason: string): RunOutcome => ({ status: "ignored", ack: true, reason });

export function toRunReport(report: ToolReport | undefined, fallbackStderr?: string): RunReport {
  if (!report) return { last_exit_code: null, last_stdout: null, last_stderr: fallbackStderr ?? null };
  return { last_exit_code: report.exitCode, last_stdout: report.stdout, last_stderr: report.stderr };
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
