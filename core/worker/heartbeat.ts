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
export const leaseVisibilitySeconds = (o: Pick<WorkerOptions, "leaseMs" | "visibilityMarginSeconds">) => Math.ceil(o.leaseMs / 1000) + o.visibilityMarginSeconds;

export interface Heartbeat {
  stop(): Promise<void>;
}

/**
 * While a job runs: renew the lock, then the job lease, then the message's visibility, every
 * `heartbeatMs`. The lock goes first so that it rarely outlives the job lease (a kill between the two renewals
 * can leave it one beat longer, which only delays the next attempt as a busy lock): when a worker dies,
 * whoever claims the lapsed job finds the lock lapsed too. Losing the lock or the claim (another
 * worker took over after a stall) calls `onLost`, which aborts the run. A failed renewal (DynamoDB
 * briefly unavailable) is retried on the next beat: the lease is three beats long by default.
 */
export function startHeartbeat(args: {
  deps: Deps;
  job: JobItem;
  lock: { resource: string; owner: string };
  msg: MessageContext | undefined;
  options: WorkerOptions;
  onLost: (why: string) => void;
}): Heartbeat {
  const { deps, job, lock, msg, options } = args;
  let stopped = false;
  let current: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const beat = async () => {
    try {
      if (!(await renewLock(deps, lock.resource, lock.owner, options.leaseMs))) {
        stopped = true;
        args.onLost(`lock ${lock.resource} is no longer held by ${lock.owner}`);
        return;
      }
      if (!(await renewJobLease(deps, job, options.leaseMs))) {
        stopped = true;
        args.onLost("the job was claimed by another worker");
        return;
      }
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
      await current;
    },
  };
}
