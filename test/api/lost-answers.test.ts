import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awsTimeouts, createAwsClients } from "../../core/aws/clients.ts";
import { listBackups } from "../../core/backups/backups.ts";
import { listJobs } from "../../core/jobs/jobs.ts";
import { LOCAL_REGION } from "../../local/stack.ts";
import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { body } from "../support/spec.ts";

let env: TestEnv;
let tenant: Tenant;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: uniq("lost").replace(/-/g, "_") });
});
afterAll(async () => env?.cleanup());

/**
 * The service's own DynamoDB client (the API's timeouts) with a fault no real DynamoDB Local can
 * be made to produce on cue: the first `drops` transactions fail as a timed-out socket does,
 * either after DynamoDB committed them (`lost: "answer"`: the answer is thrown away) or before
 * they reached it (`lost: "request"`). The middleware sits at `initialize`, outside the SDK's own
 * retries, so it stands for every try of one call timing out.
 */
function clientLosing(lost: "answer" | "request", drops: number) {
  const ddb = createAwsClients({ region: LOCAL_REGION, endpoint: env.infra.endpoint }, awsTimeouts.api).ddb;
  const sent: string[] = [];
  const timedOut = () => Object.assign(new Error(`socket timed out (the ${lost} was dropped by the test)`), { name: "TimeoutError" });
  ddb.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== "TransactWriteItemsCommand") return next(args);
      sent.push(String((args.input as { ClientRequestToken?: string }).ClientRequestToken));
      if (lost === "request" && sent.length <= drops) throw timedOut();
      const out = await next(args);
      if (lost === "answer" && sent.length <= drops) throw timedOut();
      return out;
    },
    { step: "initialize", name: "dropTransactions" },
  );
  return { ddb, sent };
}

async function postBackup(ddb: ReturnType<typeof clientLosing>["ddb"], t: Tenant) {
  const app = env.app({ deps: { ...env.deps, ddb } });
  // No Idempotency-Key, as in the burst that found it.
  const res = await app.request(`/v1/projects/${t.projectId}/backups`, { method: "POST", headers: { authorization: `Bearer ${await t.key()}` } });
  return { res, answer: await body(res) };
}

const written = async (t: Tenant) => ({
  backups: (await listBackups(env.deps, t.projectId, 100)).items,
  jobs: (await listJobs(env.deps, t.projectId, 100)).items,
});

describe("a job-starting request whose transaction committed but whose answer was lost", () => {
  it("sends it again with the same ClientRequestToken and answers 202 with the job: exactly one backup and one job exist", async () => {
    // prepare
    const { ddb, sent } = clientLosing("answer", 1);

    // act
    const { res, answer } = await postBackup(ddb, tenant);

    // assess: the answer names the job that was written, and nothing was written twice
    expect(res.status, JSON.stringify(answer)).toBe(202);
    expect(sent.length, "the transaction was sent again after its answer was lost").toBe(2);
    expect(new Set(sent).size, "every send carried the same ClientRequestToken").toBe(1);
    const { backups, jobs } = await written(tenant);
    expect(backups).toHaveLength(1);
    expect(jobs.map((j) => j.id)).toEqual([answer.job.id]);
    expect(jobs[0]!.backup_id).toBe(backups[0]!.id);
  });

  it("answers 202 even when no send was answered, once it reads the job back", async () => {
    const other = await env.seedTenant({ database: uniq("lost").replace(/-/g, "_") });
    const { ddb, sent } = clientLosing("answer", Infinity);
    const { res, answer } = await postBackup(ddb, other);
    expect(res.status, JSON.stringify(answer)).toBe(202);
    expect(new Set(sent).size).toBe(1);
    // Each resend was answered by DynamoDB with the first one's outcome: one backup, not three.
    const { backups, jobs } = await written(other);
    expect(backups).toHaveLength(1);
    expect(jobs.map((j) => j.id)).toEqual([answer.job.id]);
  });

  it("answers 503 only when nothing was written", async () => {
    const other = await env.seedTenant({ database: uniq("lost").replace(/-/g, "_") });
    const { ddb } = clientLosing("request", Infinity);
    const { res, answer } = await postBackup(ddb, other);
    expect(res.status, JSON.stringify(answer)).toBe(503);
    expect(answer).toEqual({ error: expect.stringMatching(/unavailable/) });
    expect(await written(other)).toEqual({ backups: [], jobs: [] });
  });
});

describe("DynamoDB Local and ClientRequestToken", () => {
  it("commits a transaction once per token and answers a repeat with success, as DynamoDB does", async () => {
    // The tests above rely on it: if DynamoDB Local ignored the token, the resend would fail its
    // attribute_not_exists conditions and the request would answer 409 instead of 202.
    const ddb = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: LOCAL_REGION, endpoint: env.infra.endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } }),
    );
    const pk = `TOKEN#${randomUUID()}`;
    const put = (token: string | undefined, v: number) =>
      ddb.send(
        new TransactWriteCommand({
          ClientRequestToken: token,
          TransactItems: [{ Put: { TableName: env.names.table, Item: { pk, sk: "x", v }, ConditionExpression: "attribute_not_exists(pk)" } }],
        }),
      );
    const token = randomUUID();
    await put(token, 1);
    await expect(put(token, 1)).resolves.toBeDefined();
    await expect(put(token, 2)).rejects.toMatchObject({ name: "IdempotentParameterMismatchException" });
    await expect(put(randomUUID(), 1)).rejects.toMatchObject({ name: "TransactionCanceledException" });
  });
});
