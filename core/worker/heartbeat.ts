import { ChangeMessageVisibilityCommand } from "@aws-sdk/client-sqs";
import type { Deps } from "../deps.ts";
import { renewJobLease, type JobItem } from "../jobs/jobs.ts";
import { renewLock } from "../jobs/locks.ts";
import type { WorkerOptions } from "./options.ts";

export interface MessageContext {
  receiptHandle: string;
  receiveCount: number;
}

/** Hides the message for `seconds` (0..12 h). False when SQS refused (message gone or handle stale). */
export async function setVisibility(deps: Pick<Deps, "sqs" | "queueUrl" | "log">, msg: MessageContext | undefined, seconds: number): Promise<boolean> {
  if (!msg) return false;
  try {
    await deps.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: deps.queueUrl,
        ReceiptHandle: msg.receiptHandle,
        VisibilityTimeout: Math.max(0, Math.min(43_200, Math.ceil(seconds))),
      }),
    );
    return true;
  } catch (err) {
    deps.log.warn("could not change the message's visibility", { error: String(err) });
    return false;
  }
}

/** The visibility that keeps a message hidden until just after the lease it guards has lapsed. */
export const leaseVisibilitySeconds = (o: Pick<WorkerOptions, "leaseMs" | "visibilityMarginSeconds">) =>
  Math.ceil(o.leaseMs / 1000) + o.visibilityMarginSeconds;

export interface Heartbeat {
  stop(): Promise<void>;
}

/**
 * While a job runs: renew the lock, then the job lease, then the message's visibility, every
 * `heartbeatMs`. The lock goes first so that it rarely outlives the job lease (a kill between the two renewals
 * can leave it one beat longer, which only delays the next attempt as a busy lock): when a worker dies,
 * whoever claims the lapsed job finds the lock lapsed too. Losing the lock or the claim (another
 * worker took over after a stall) calls `onLost`, which aborts the run. A failed renewal (DynamoDB
 * briefly unavailable) is retried on the next beat: the lease is four beats long by default.
 *
 * An attempt that cannot renew stops itself before its lease ends: a deadline, reset by each
 * successful renewal to `lease - margin` after that renewal was sent, calls `onLost` even while a
 * renewal hangs, so the attempt is aborted before the reaper (which waits for the lease to lapse)
 * can start the next attempt.
 */
export const selfAbortMarginMs = (o: Pick<WorkerOptions, "leaseMs" | "heartbeatMs">) => Math.min(o.heartbeatMs, o.leaseMs / 4);

export function startHeartbeat(args: {
  deps: Deps;
  job: JobItem;
  /** The locks the attempt holds (its database lock, its cluster job slot): renewed together. */
  locks: { resource: string; owner: string }[];
  msg: MessageContext | undefined;
  options: WorkerOptions;
  onLost: (why: string) => void;
}): Heartbeat {
  const { deps, job, locks, msg, options } = args;
  let stopped = false;
  let current: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let deadline: NodeJS.Timeout | undefined;
  const armDeadline = (sentAt: number) => {
    if (deadline) clearTimeout(deadline);
    const wait = sentAt + options.leaseMs - selfAbortMarginMs(options) - Date.now();
    deadline = setTimeout(
      () => {
        if (stopped) return;
        stopped = true;
        if (timer) clearTimeout(timer);
        deps.log.warn("could not renew the job lease before it ends; stopping the attempt", { job_id: job.id, attempt: job.attempts });
        args.onLost(`the lease could not be renewed before it ended (attempt ${job.attempts})`);
      },
      Math.max(0, wait),
    );
  };
  armDeadline(Date.now());
  const beat = async () => {
    const sentAt = Date.now();
    try {
      for (const lock of locks) {
        if (!(await renewLock(deps, lock.resource, lock.owner, options.leaseMs))) {
          stopped = true;
          args.onLost(`lock ${lock.resource} is no longer held by ${lock.owner}`);
          return;
        }
      }
      if (!(await renewJobLease(deps, job, options.leaseMs))) {
        stopped = true;
        args.onLost("the job was claimed by another worker");
        return;
      }
      if (!stopped) armDeadline(sentAt);
      await setVisibility(deps, msg, leaseVisibilitySeconds(options));
    } catch (err) {
      deps.log.warn("heartbeat failed; retrying on the next beat", { job_id: job.id, error: String(err) });
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      current = beat().finally(schedule);
    }, options.heartbeatMs);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (deadline) clearTimeout(deadline);
      // A renewal in flight finishes first (bounded: a hung one is abandoned after a beat; its late
      // write can only fail, since it is conditional on what the released lock and claim were).
      await Promise.race([current, new Promise((r) => setTimeout(r, options.heartbeatMs).unref())]);
    },
  };
}
