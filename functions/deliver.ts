import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { loadConfig } from "../core/config.ts";
import { createDeps } from "../core/deps.ts";
import { createDeliveryHandler } from "../core/webhooks/handler.ts";

const run = createDeliveryHandler(createDeps(loadConfig()));

/** SQS batch of webhook deliveries -> one signed POST attempt each, partial batch failures reported. */
export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => run(event, context);
