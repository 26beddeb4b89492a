import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { loadConfig } from "../core/config.ts";
import { createDepsWithoutS3 } from "../core/deps.ts";
import { createDeliveryHandler } from "../core/webhooks/handler.ts";

// No S3 client: deliveries never touch the bucket (the configuration only names it).
const run = createDeliveryHandler(createDepsWithoutS3(loadConfig(), {}, "worker"));

/** SQS batch of webhook deliveries -> one signed POST attempt each, partial batch failures reported. */
export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => run(event, context);
