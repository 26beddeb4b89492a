import type { Deps } from "../deps.ts";
import { getJobItem, handOverClaim } from "../jobs/jobs.ts";
import type { TaskSettings } from "../tasks/launcher.ts";
import { runAttempt } from "./lifecycle.ts";
import { ignored, type RunOutcome } from "./runner.ts";
import { workerOptions, type WorkerOptions } from "./options.ts";
import { jobRunners } from "./run.ts";

/**
 * The task entry's job: take over the claim the launching worker made for this attempt (`deps.workerId`
 * is the task's own id, `task:<arn>` or `local-task:<pid>`), then run the attempt exactly as the
 * worker would (same runner, lock, heartbeat, retries), with the task's longer lease. A task whose
 * attempt is gone (settled, or the launch claim lapsed and the job was claimed again) does nothing.
 */
export async function runTaskJob(deps: Deps, input: TaskSettings, overrides: Partial<WorkerOptions> = {}): Promise<RunOutcome> {
  const o = workerOptions({ ...overrides, leaseMs: input.leaseMs, heartbeatMs: input.heartbeatMs, offload: undefined });
  const job = await getJobItem(deps, input.jobId);
  if (!job) return { status: "rejected", ack: true, reason: "no such job" };
  const runner = jobRunners[job.type];
  if (!runner) throw new Error(`job ${job.id} is a ${job.type} job, which the worker does not run`);
  if (job.state !== "running" || job.attempts !== input.attempt)
    return ignored(`attempt ${input.attempt} is no longer running (job ${job.state}, attempt ${job.attempts})`);
  const claimed = await handOverClaim(deps, job, input.launchedBy, deps.workerId, o.leaseMs);
  if (!claimed) return ignored(`the claim is no longer ${input.launchedBy}'s or this task's`);
  deps.log.info("task took over the job", { job_id: job.id, type: job.type, attempt: claimed.attempts, task_id: deps.workerId });
  return runAttempt(deps, runner, claimed, undefined, o);
}
