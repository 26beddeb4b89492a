import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAwsClients } from "../../core/aws/clients.ts";
import { keys } from "../../core/db/keys.ts";
import { LOCAL_REGION } from "../../local/stack.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { body } from "../support/spec.ts";

let env: TestEnv;
let tenant: Tenant;
let key: string;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "conflicts_db" });
  key = await tenant.key();
});
afterAll(async () => env?.cleanup());

/**
 * DynamoDB Local serialises transactions, so it never answers TransactionConflict; real DynamoDB
 * does under concurrent requests on the same items. This injects it (a client middleware, the one
 * fault here a real part cannot produce): the first `times` TransactWriteItems calls fail as real
 * DynamoDB's do, before reaching the table.
 */
function conflictingClient(times: number) {
  const { ddb } = createAwsClients({ region: LOCAL_REGION, endpoint: env.infra.endpoint });
  let left = times;
  ddb.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === "TransactWriteItemsCommand" && left > 0) {
        left--;
        const items = (args.input as { TransactItems: unknown[] }).TransactItems;
        throw new TransactionCanceledException({
          message: "Transaction cancelled, please refer cancellation reasons for specific reasons [None, None, TransactionConflict]",
          $metadata: { httpStatusCode: 400 },
          CancellationReasons: items.map((_, i) => ({ Code: i === items.length - 1 ? "TransactionConflict" : "None" })),
        });
      }
      return next(args);
    },
    { step: "initialize", name: "injectTransactionConflict" },
  );
  return { ddb, injected: () => times - left };
}

describe("DynamoDB TransactionConflict", () => {
  it("concurrent POSTs with one Idempotency-Key meeting TransactionConflict: all 202, one job, no 5xx", async () => {
    const client = conflictingClient(6);
    const app = env.app({ deps: { ...env.deps, ddb: client.ddb } });
    const post = () =>
      app.request(`/v1/projects/${tenant.projectId}/backups`, {
        method: "POST",
        headers: { "x-api-key": key, "idempotency-key": "conflict-1", "content-type": "application/json" },
        body: JSON.stringify({ label: "race" }),
      });
    const responses = await Promise.all(Array.from({ length: 6 }, post));
    const bodies = await Promise.all(responses.map((r) => body(r)));
    expect(client.injected(), "the fault was injected").toBe(6);
    for (const [i, r] of responses.entries()) expect(r.status, JSON.stringify(bodies[i])).toBe(202);
    expect(new Set(bodies.map((b) => b.job.id)).size, JSON.stringify(bodies.map((b) => b.job.id))).toBe(1);

    const jobs = await env.deps.ddb.send(
      new QueryCommand({
        TableName: env.names.table,
        IndexName: "gsi1",
        KeyConditionExpression: "gsi1pk = :p",
        ExpressionAttributeValues: { ":p": keys.projectJobsIndex(tenant.projectId) },
      }),
    );
    expect(jobs.Items?.length).toBe(1);
  });

  it("contention that never clears is a retryable 409 with Retry-After, never a 500", async () => {
    const client = conflictingClient(1000);
    const app = env.app({ deps: { ...env.deps, ddb: client.ddb } });
    const res = await app.request(`/v1/projects/${tenant.projectId}/backups`, { method: "POST", headers: { "x-api-key": key } });
    const b = await body(res);
    expect(res.status, JSON.stringify(b)).toBe(409);
    expect(b.error).toMatch(/concurrent/);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(client.injected(), "retried before giving up").toBeGreaterThan(1);
  });
});
