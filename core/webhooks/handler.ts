import { sqsBatchHandler } from "../aws/sqs-batch.ts";
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
  return sqsBatchHandler(deliveryMessageSchema, "delivery message", (msg) => deliverMessage(deps, msg, options));
}
