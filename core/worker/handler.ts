import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { Deps } from "../deps.ts";
import { jobMessageSchema } from "../jobs/queue.ts";
import { runJob } from "./run.ts";

/**
 * The SQS batch handler, shared by the Lambda function and the local stack's worker loop. Each
 * message is processed on its own; a failing one is reported back (partial batch response) so
 * only it is redelivered, and after the queue's redrive count it lands in the dead-letter queue.
 */
export function createWorkerHandler(deps: Deps) {
  const processor = new BatchProcessor(EventType.SQS);
  const record = async (r: SQSRecord) => {
    let body: unknown;
    try {
      body = JSON.parse(r.body);
    } catch {
      throw new Error(`message ${r.messageId} is not JSON`);
    }
    const msg = jobMessageSchema.safeParse(body);
    if (!msg.success) throw new Error(`message ${r.messageId} is not a job message`);
    await runJob(deps, msg.data.job_id, { receiptHandle: r.receiptHandle, receiveCount: Number(r.attributes.ApproximateReceiveCount ?? "1") });
  };
  return (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    processPartialResponse(event, record, processor, { context });
}
