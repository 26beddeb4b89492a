import { sqsBatchHandler } from "../aws/sqs-batch.ts";
import type { Deps } from "../deps.ts";
import { jobMessageSchema } from "../jobs/queue.ts";
import type { WorkerOptions } from "./options.ts";
import { runJob } from "./run.ts";

/** Thrown for a message the worker returned to the queue with a delay: it must not be deleted. */
export class MessageReturned extends Error {
  override name = "MessageReturned";
}

/**
 * The jobs queue's batch handler, shared by the Lambda function and the local stack's worker loop
 * (each message on its own, a failing one reported back alone: see sqsBatchHandler). A message the
 * worker returned on purpose (busy database lock) is reported the same way, so that neither
 * Lambda nor the local loop deletes it.
 */
export function createWorkerHandler(deps: Deps, options: Partial<WorkerOptions> = {}) {
  return sqsBatchHandler(jobMessageSchema, "job message", async (msg, r) => {
    const outcome = await runJob(
      deps,
      msg.job_id,
      { receiptHandle: r.receiptHandle, receiveCount: Number(r.attributes.ApproximateReceiveCount ?? "1") },
      options,
    );
    if (!outcome.ack) throw new MessageReturned(`job ${msg.job_id}: message returned (${outcome.status})`);
  });
}
