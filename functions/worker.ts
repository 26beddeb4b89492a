import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { loadConfig } from "../core/config.ts";
import { createDeps } from "../core/deps.ts";
import { createWorkerHandler } from "../core/worker/handler.ts";

const run = createWorkerHandler(createDeps(loadConfig()));

/** SQS batch -> one job per message, partial batch failures reported to Lambda. */
export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => run(event, context);
