import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { z } from "zod";

/**
 * An SQS batch handler (the Lambda function's, and the local stack's loops'): each record's body
 * is parsed as JSON and checked with `schema`, then `handle` runs on it. Records are processed on
 * their own; one that throws (malformed, or `handle` failed or returned it on purpose) is reported
 * back alone (partial batch response), so only it is redelivered, and past the queue's redrive
 * count it lands in the dead-letter queue.
 *
 * @example
 * export const handler = sqsBatchHandler(jobMessageSchema, "job message", (msg, record) => runJob(deps, msg.job_id));
 */
export function sqsBatchHandler<S extends z.ZodType>(
  schema: S,
  what: string,
  handle: (message: z.infer<S>, record: SQSRecord) => Promise<unknown>,
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  const record = async (r: SQSRecord) => {
    let body: unknown;
    try {
      body = JSON.parse(r.body);
    } catch {
      throw new Error(`message ${r.messageId} is not JSON`);
    }
    const msg = schema.safeParse(body);
    if (!msg.success) throw new Error(`message ${r.messageId} is not a ${what}`);
    await handle(msg.data as z.infer<S>, r);
  };
  return (event, context) =>
    // A processor per batch: it keeps the batch's records and failures, and the local loops run
    // several batches at once through one handler (a shared one would mix their failures up and
    // have returned messages deleted). A batch whose messages all failed or were returned on
    // purpose is not an error of the invocation.
    processPartialResponse(event, record, new BatchProcessor(EventType.SQS), { context, throwOnFullBatchFailure: false });
}
