import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { loadConfig } from "../core/config.ts";
import { createDeps } from "../core/deps.ts";
import { getClusterConnection } from "../core/orgs/orgs.ts";
import { createWorkerHandler } from "../core/worker/handler.ts";

const config = loadConfig();
const deps = createDeps(config);
// Verification restores run on the project's own cluster unless a verification cluster is configured.
const verificationServer = config.verifyClusterId ? await getClusterConnection(deps, config.verifyClusterId) : undefined;
const run = createWorkerHandler(deps, { verificationServer });

/** SQS batch -> one job per message, partial batch failures reported to Lambda. */
export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => run(event, context);
