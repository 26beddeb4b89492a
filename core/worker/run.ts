import type { Deps } from "../deps.ts";
import { getJobItem, type JobType } from "../jobs/jobs.ts";
import { backupRunner } from "./backup.ts";
import { drillRunner } from "./drill.ts";
import { exportRunner } from "./export.ts";
import { previewCreateRunner, previewDeleteRunner } from "./previews.ts";
import type { MessageContext } from "./heartbeat.ts";
import { promoteRunner } from "./promote.ts";
import { restoreRunner } from "./restore.ts";
import { runClaimed } from "./lifecycle.ts";
import type { JobRunner, RunOutcome } from "./runner.ts";
import { workerOptions, type WorkerOptions } from "./options.ts";

export type { MessageContext } from "./heartbeat.ts";
export type { RunOutcome } from "./runner.ts";

/**
 * Which runner does each job type's work. The claim, the lock, the heartbeat and retries are
 * shared (lifecycle.ts); a new job type is one runner in its own file and one line here.
 */
export const jobRunners: Partial<Record<JobType, JobRunner>> = {
  "project.backup": backupRunner,
  "project.export": exportRunner,
  "project.restore": restoreRunner,
  "branch.create": previewCreateRunner,
  "instance.destroy": previewDeleteRunner,
  "project.promote_preview": promoteRunner,
  "cluster.pitr_drill": drillRunner,
};

/**
 * Runs one job for one queue delivery, with the runner of its type.
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
  const runner = jobRunners[job.type];
  if (!runner) throw new Error(`job ${jobId} is a ${job.type} job, which the worker does not run`);
  return runClaimed(deps, runner, job, msg, o);
}
