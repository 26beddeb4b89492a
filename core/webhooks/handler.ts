import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { Deps } from "../deps.ts";
import { deliveryMessageSchema } from "./deliveries.ts";
import { deliverMessage, type DeliveryOptions } from "./deliver.ts";

/**
 * The deliveries queue's batch handler, shared by the Lambda function and the local stack's loop.
 * Each message is one attempt of one delivery; a message that throws (a malformed one, DynamoDB
 * unreachable) is reported back alone and, past the redrive count, lands in the dead-letter queue.
 * An attempt that fails at the receiver is not an error here: it is recorded and rescheduled.
 */
export function createDeliveryHandler(deps: Deps, options: Partial<DeliveryOptions> = {}) {
  const record = async (r: SQSRecord) => {
    let body: unknown;
    try {
      body = JSON.parse(r.body);
    } catch {
      throw new Error(`message ${r.messageId} is not JSON`);
    }
    const msg = deliveryMessageSchema.safeParse(body);
    if (!msg.success) throw new Error(`message ${r.messageId} is not a delivery message`);
    await deliverMessage(deps, msg.data, options);
  };
  return (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
    processPartialResponse(event, record, new BatchProcessor(EventType.SQS), { context, throwOnFullBatchFailure: false });
}
