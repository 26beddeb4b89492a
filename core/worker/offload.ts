import type { Deps } from "../deps.ts";
import { claimJob, failJob, getJobItem, handOverClaim, retryJob, type JobItem } from "../jobs/jobs.ts";
import { launchClaim, TaskLaunchError } from "../tasks/launcher.ts";
import type { MessageContext } from "./heartbeat.ts";
import { ignored, requeue, type JobRunner, type RunOutcome } from "./runner.ts";
import { backoffSeconds, type OffloadOptions, type WorkerOptions } from "./options.ts";

const mb = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(bytes < 1024 ** 2 ? 2 : 0)} MB`;

/**
 * The decision at claim time: a job that moves more than the threshold runs as a task, not here.
 * The worker measures the job, claims it for the launch (`claimed_by` = `launch:<worker>`, a
 * conditional write, so two deliveries of one job never launch two tasks), starts the task, and
 * records the task as the claim's holder (`claimed_by` = `task:<ECS task ARN>` or
 * `local-task:<pid>`) with a lease that covers the task's start; the task's heartbeat renews it
 * from then on. The message is acknowledged: the job record, not the queue, now tracks the work,
 * and a task that dies lets the lease lapse, after which the reaper enqueues the job again.
 *
 * Undefined when the job stays here: at or under the threshold, or not measurable (the attempt
 * itself then reports the cluster's error).
 */
export async function launchIfLarge(
  deps: Deps,
  runner: JobRunner,
  job: JobItem,
  msg: MessageContext | undefined,
  o: WorkerOptions,
  offload: OffloadOptions,
): Promise<RunOutcome | undefined> {
  let bytes: number;
  try {
    bytes = await runner.measure!(deps, job);
  } catch (err) {
    deps.log.warn(`could not measure the ${runner.noun}; running it here`, { job_id: job.id, error: String(err) });
    return undefined;
  }
  const where = { job_id: job.id, type: job.type, size_bytes: bytes, threshold_bytes: offload.thresholdBytes };
  if (bytes <= offload.thresholdBytes) {
    deps.log.debug("job runs in the worker", where);
    return undefined;
  }

  const launchedBy = launchClaim(deps.workerId);
  const claimed = await claimJob(deps, job, launchedBy, offload.leaseMs);
  if (!claimed) return ignored("claimed by another worker");

  let taskId: string;
  try {
    ({ taskId } = await offload.launcher.launch({ jobId: job.id, attempt: claimed.attempts, launchedBy }));
  } catch (err) {
    return launchFailed(deps, runner, claimed, msg, o, bytes, err);
  }

  const recorded = await handOverClaim(deps, claimed, launchedBy, taskId, offload.leaseMs);
  if (!recorded) {
    // The task may already have run to the end (a fast local task), or the launch outlived the
    // launch lease and the job was claimed again (the task then finds its attempt gone and exits).
    const now = await getJobItem(deps, job.id);
    deps.log.warn("could not record the task on the job", { ...where, task_id: taskId, state: now?.state, claimed_by: now?.claimed_by });
  }
  deps.log.info(`${runner.noun} handed to a ${offload.launcher.kind} task`, { ...where, attempt: claimed.attempts, task_id: taskId });
  return { status: "launched", ack: true, reason: `${mb(bytes)} > ${mb(offload.thresholdBytes)}: ${taskId}` };
}

/** No task started: the attempt is spent, retried with backoff while attempts remain; the error says why. */
async function launchFailed(
  deps: Deps,
  runner: JobRunner,
  job: JobItem,
  msg: MessageContext | undefined,
  o: WorkerOptions,
  bytes: number,
  err: unknown,
): Promise<RunOutcome> {
  const reason = err instanceof TaskLaunchError ? err.message : `unexpected error: ${err instanceof Error ? err.message : String(err)}`;
  const error = `Could not start a task for this ${runner.noun} (${mb(bytes)} to move, more than one worker invocation can): ${reason}`;
  const fields = { job_id: job.id, type: job.type, attempt: job.attempts, error };
  if (job.attempts < job.max_attempts) {
    const delay = backoffSeconds(o, job.attempts);
    const retried = await retryJob(deps, job, error, new Date(deps.now().getTime() + delay * 1000));
    if (!retried) return ignored("the claim was lost before the retry");
    deps.log.warn("task launch failed; will retry", { ...fields, retry_in_seconds: delay });
    return { status: "retrying", ack: await requeue(deps, job.id, delay, msg), reason };
  }
  const failed = await failJob(deps, job, error, "transient");
  if (!failed) return ignored("the claim was lost before the failure");
  deps.log.warn("task launch failed; no attempts left", fields);
  await runner.abandoned?.(deps, failed, o);
  return { status: "failed", ack: true, reason };
}
