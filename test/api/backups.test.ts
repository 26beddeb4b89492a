import { ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { keys } from "../../core/db/keys.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { body, expectShape } from "../support/spec.ts";

let env: TestEnv;
let tenant: Tenant;
let key: string;
const auth = () => ({ authorization: `Bearer ${key}` });

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "demo_unused" });
  key = await tenant.key();
});
afterAll(async () => env?.cleanup());

const post = (init: RequestInit = {}, project = tenant.projectId) =>
  env.app().request(`/v1/projects/${project}/backups`, { method: "POST", ...init, headers: { ...auth(), ...(init.headers ?? {}) } });

describe("POST /v1/projects/{projectID}/backups", () => {
  it("accepts an absent body, {} and a label; answers 202 with a pending project.backup job and enqueues it", async () => {
    const noBody = await post();
    expect(noBody.status, await noBody.clone().text()).toBe(202);
    const { job } = await body(noBody);
    expectShape("Job", job, expect);
    expect(job).toMatchObject({
      type: "project.backup",
      state: "pending",
      attempts: 0,
      max_attempts: 3,
      organization_id: tenant.organizationId,
      project_id: tenant.projectId,
      cluster_id: tenant.clusterId,
      locked_resource: `database:${tenant.clusterId}/demo_unused`,
      preview_database_id: null,
      claimed_at: null,
      completed_at: null,
      error: null,
    });

    const empty = await post({ body: "{}", headers: { "content-type": "application/json" } });
    expect(empty.status).toBe(202);
    const labelled = await post({ body: JSON.stringify({ label: "before migration 42" }), headers: { "content-type": "application/json" } });
    expect(labelled.status).toBe(202);

    const list = await body(await env.app().request(`/v1/projects/${tenant.projectId}/backups`, { headers: auth() }));
    expect(list.backups.map((b: { label: string }) => b.label)).toEqual(["before migration 42", "manual", "manual"]);
    for (const b of list.backups) {
      expectShape("Backup", b, expect);
      expect(b).toMatchObject({ state: "pending", verification_state: "pending", size_bytes: 0, database_name: "demo_unused" });
      expect(b.backup_key).toBe(`projects/${tenant.projectId}/backups/${b.id}.dump`);
    }

    const received = await env.deps.sqs.send(new ReceiveMessageCommand({ QueueUrl: env.deps.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const ids = (received.Messages ?? []).map((m) => JSON.parse(m.Body!).job_id);
    expect(ids).toContain(job.id);
  });

  it("rejects a label over 200 characters and an out-of-range retention_days, naming the field", async () => {
    const long = await post({ body: JSON.stringify({ label: "x".repeat(201) }), headers: { "content-type": "application/json" } });
    expect(long.status).toBe(400);
    expect((await body(long)).error).toMatch(/^label/);
    for (const retention_days of [0, 366, 1.5, "7"]) {
      const res = await post({ body: JSON.stringify({ retention_days }), headers: { "content-type": "application/json" } });
      expect(res.status, JSON.stringify(retention_days)).toBe(400);
      expect((await body(res)).error).toMatch(/^retention_days/);
    }
    const ok = await post({ body: JSON.stringify({ retention_days: 30 }), headers: { "content-type": "application/json" } });
    expect(ok.status).toBe(202);
  });

  it("answers 415 for a body that is not JSON, 400 for malformed JSON, 413 for a body over 64 KiB", async () => {
    const text = await post({ body: "label=x", headers: { "content-type": "text/plain" } });
    expect(text.status).toBe(415);
    expect(await body(text)).toEqual({ error: expect.stringMatching(/JSON/) });
    const malformed = await post({ body: "{label", headers: { "content-type": "application/json" } });
    expect(malformed.status).toBe(400);
    expect(await body(malformed)).toEqual({ error: expect.stringMatching(/not valid JSON/) });
    const huge = await post({ body: JSON.stringify({ label: "x".repeat(70 * 1024) }), headers: { "content-type": "application/json" } });
    expect(huge.status).toBe(413);
    expect(await body(huge)).toEqual({ error: expect.stringMatching(/64 KiB/) });
  });

  it("replays the original job for a repeated Idempotency-Key and refuses the key with another body", async () => {
    const before = (await body(await env.app().request(`/v1/projects/${tenant.projectId}/backups`, { headers: auth() }))).backups.length;
    const send = (label: string) =>
      post({ body: JSON.stringify({ label }), headers: { "content-type": "application/json", "idempotency-key": "deploy-7781" } });
    const first = await body(await send("pre-deploy"));
    const again = await send("pre-deploy");
    expect(again.status).toBe(202);
    expect((await body(again)).job.id).toBe(first.job.id);
    const other = await send("something else");
    expect(other.status).toBe(409);
    expect((await body(other)).error).toMatch(/Idempotency-Key/);
    const after = (await body(await env.app().request(`/v1/projects/${tenant.projectId}/backups`, { headers: auth() }))).backups.length;
    expect(after).toBe(before + 1);
  });

  it("makes concurrent requests with one Idempotency-Key create a single job", async () => {
    const results = await Promise.all(Array.from({ length: 5 }, () => post({ headers: { "idempotency-key": "race-1" } })));
    const ids = new Set<string>();
    for (const res of results) {
      expect(res.status, await res.clone().text()).toBe(202);
      ids.add((await body(res)).job.id);
    }
    expect(ids.size).toBe(1);
  });
});

describe("GET /v1/projects/{projectID}/backups", () => {
  it("lists newest first, an empty project as [], and pages with limit and x-next-cursor", async () => {
    const other = await env.seedTenant({ database: "other_db" });
    const otherKey = await other.key();
    const empty = await env.app().request(`/v1/projects/${other.projectId}/backups`, { headers: { "x-api-key": otherKey } });
    expect(empty.status).toBe(200);
    expect(await body(empty)).toEqual({ backups: [] });

    for (let i = 0; i < 5; i++) {
      await env.app().request(`/v1/projects/${other.projectId}/backups`, {
        method: "POST",
        headers: { "x-api-key": otherKey, "content-type": "application/json" },
        body: JSON.stringify({ label: `n${i}` }),
      });
    }
    const all = await body(await env.app().request(`/v1/projects/${other.projectId}/backups`, { headers: { "x-api-key": otherKey } }));
    expect(all.backups.map((b: { label: string }) => b.label)).toEqual(["n4", "n3", "n2", "n1", "n0"]);

    const page1 = await env.app().request(`/v1/projects/${other.projectId}/backups?limit=2`, { headers: { "x-api-key": otherKey } });
    const cursor = page1.headers.get("x-next-cursor");
    expect((await body(page1)).backups.map((b: { label: string }) => b.label)).toEqual(["n4", "n3"]);
    expect(cursor).toBeTruthy();
    const page2 = await body(
      await env.app().request(`/v1/projects/${other.projectId}/backups?limit=2&cursor=${cursor}`, { headers: { "x-api-key": otherKey } }),
    );
    expect(page2.backups.map((b: { label: string }) => b.label)).toEqual(["n2", "n1"]);

    // Above the maximum is clamped (CapyDB's clients send larger limits), not refused.
    const clamped = await env.app().request(`/v1/projects/${other.projectId}/backups?limit=1001`, { headers: { "x-api-key": otherKey } });
    expect(clamped.status, await clamped.clone().text()).toBe(200);
    expect((await body(clamped)).backups).toHaveLength(5);
    for (const bad of ["0", "-1", "x"]) {
      const res = await env.app().request(`/v1/projects/${other.projectId}/backups?limit=${bad}`, { headers: { "x-api-key": otherKey } });
      expect(res.status, bad).toBe(400);
      expect((await body(res)).error).toMatch(/^limit/);
    }
    const badCursor = await env.app().request(`/v1/projects/${other.projectId}/backups?cursor=nonsense`, { headers: { "x-api-key": otherKey } });
    expect(badCursor.status).toBe(400);
  });
});

describe("queue outage after the write", () => {
  it("still answers 202 with the committed job, which stays indexed as pending for the reaper to enqueue", async () => {
    const deadQueue = new SQSClient({
      region: "us-east-1",
      endpoint: "http://127.0.0.1:9",
      credentials: { accessKeyId: "x", secretAccessKey: "x" },
      maxAttempts: 1,
    });
    const app = env.app({ deps: { ...env.deps, sqs: deadQueue } });
    const res = await app.request(`/v1/projects/${tenant.projectId}/backups`, { method: "POST", headers: auth() });
    expect(res.status, await res.clone().text()).toBe(202);
    const { job } = await body(res);
    const got = await body(await env.app().request(`/v1/jobs/${job.id}`, { headers: auth() }));
    expect(got.job).toMatchObject({ id: job.id, state: "pending" });
    const pending = await env.deps.ddb.send(
      new QueryCommand({
        TableName: env.names.table,
        IndexName: "gsi2",
        KeyConditionExpression: "gsi2pk = :p",
        ExpressionAttributeValues: { ":p": keys.jobStateIndex("pending") },
      }),
    );
    expect((pending.Items ?? []).map((i) => i.id)).toContain(job.id);
  });
});
