import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { Deps } from "../deps.ts";
import { jobMessageSchema } from "../jobs/queue.ts";
import type { WorkerOptions } from "./options.ts";
import { runJob } from "./run.ts";

/** Thrown for a message the worker returned to the queue with a delay: it must not be deleted. */
export class MessageReturned extends Error {
  override name = "MessageReturned";
}

/**
 * The SQS batch handler, shared by the Lambda function and the local stack's worker loop. Each
 * message is processed on its own; a failing one is reported back (partial batch response) so
 * only it is redelivered, and after the queue's redrive count it lands in the dead-letter queue.
 * A message the worker returned on purpose (busy database lock) is reported the same way, so that
 * neither Lambda nor the local loop deletes it.
 */
export function createWorkerHandler(deps: Deps, options: Partial<WorkerOptions> = {}) {
  const record = async (r: SQSRecord) => {
    let body: unknown;
    try {
      body = JSON.parse(r.body);
    } catch {
      throw new Error(`message ${r.messageId} is not JSON`);
    }
    const msg = jobMessageSchema.safeParse(body);
    if (!msg.success) throw new Error(`message ${r.messageId} is not a job message`);
    const outcome = await runJob(
      deps,
      msg.data.job_id,
      { receiptHandle: r.receiptHandle, receiveCount: Number(r.attributes.ApproximateReceiveCount ?? "1") },
      options,
    );
    if (!outcome.ack) throw new MessageReturned(`job ${msg.data.job_id}: message returned (${outcome.status})`);
  };
  return (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    // A processor per batch: it keeps the batch's records and failures, and the local worker loop
    // runs several batches at once through one handler (a shared one would mix their failures up
    // and have returned messages deleted). A batch whose messages were all returned on purpose is
    // not an error of the invocation.
    processPartialResponse(event, record, new BatchProcessor(EventType.SQS), { context, throwOnFullBatchFailure: false });
}
