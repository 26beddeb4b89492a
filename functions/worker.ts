import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { loadConfig } from "../core/config.ts";
import { createDeps } from "../core/deps.ts";
import { getClusterConnection } from "../core/orgs/orgs.ts";
import { awsTaskLauncher } from "../core/tasks/aws.ts";
import { DEFAULT_TASK_LEASE_MS } from "../core/tasks/launcher.ts";
import { createWorkerHandler } from "../core/worker/handler.ts";

const config = loadConfig();
const deps = createDeps(config);
// Verification restores run on the project's own cluster unless a verification cluster is configured.
const verificationServer = config.verifyClusterId ? await getClusterConnection(deps, config.verifyClusterId) : undefined;
// Jobs above the threshold run as the Fargate task (infra/task.ts), which has no 15-minute limit.
const offload = config.task ? { launcher: awsTaskLauncher(config.task), thresholdBytes: config.taskThresholdBytes, leaseMs: DEFAULT_TASK_LEASE_MS } : undefined;
const run = createWorkerHandler(deps, { verificationServer, verificationClusterId: config.verifyClusterId, offload, clusterJobCap: config.clusterJobCap });

/** SQS batch -> one job per message, partial batch failures reported to Lambda. */
export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => run(event, context);
