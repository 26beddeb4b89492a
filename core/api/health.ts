import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import type { Deps } from "../deps.ts";

export type HealthCheck = () => Promise<void>;

/**
 * Checks of the AWS dependencies the API uses; the local stack adds S3 (core/api/health-s3.ts:
 * the deployed API has no S3 client) and PostgreSQL.
 */
export function awsHealthChecks(deps: Pick<Deps, "ddb" | "table" | "sqs" | "queueUrl">): Record<string, HealthCheck> {
  return {
    dynamodb: async () => {
      await deps.ddb.send(new DescribeTableCommand({ TableName: deps.table }));
    },
    sqs: async () => {
      await deps.sqs.send(new GetQueueAttributesCommand({ QueueUrl: deps.queueUrl, AttributeNames: ["QueueArn"] }));
    },
  };
}

/** Runs every check at once, each bounded by `timeoutMs`. */
export async function runHealthChecks(checks: Record<string, HealthCheck>, timeoutMs = 2000) {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          check(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error("timed out")), timeoutMs);
          }),
        ]);
        return [name, "up"] as const;
      } catch {
        return [name, "down"] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const dependencies = Object.fromEntries(entries) as Record<string, "up" | "down">;
  const ok = entries.every(([, s]) => s === "up");
  return { status: ok ? ("ok" as const) : ("degraded" as const), dependencies };
}
