import { DescribeTableCommand, DescribeTimeToLiveCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { HeadBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { startFauxqs } from "fauxqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tableDefinition } from "../../core/db/table.ts";
import { seedLocal } from "../../local/seed.ts";
import { createApiKey } from "../../core/auth/keys.ts";
import { createTestEnv, type TestEnv } from "../support/env.ts";
import { ensureBucket, ensureQueues } from "../../local/resources.ts";
import { LOCAL_REGION } from "../../local/stack.ts";

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => env?.cleanup());

describe("local stack resources", () => {
  it("creates the table exactly as tableDefinition declares it", async () => {
    const ddb = new DynamoDBClient({ region: LOCAL_REGION, endpoint: env.infra.endpoint, credentials: { accessKeyId: "x", secretAccessKey: "x" } });
    const { Table } = await ddb.send(new DescribeTableCommand({ TableName: env.names.table }));
    expect(Table?.KeySchema).toEqual([
      { AttributeName: tableDefinition.partitionKey, KeyType: "HASH" },
      { AttributeName: tableDefinition.sortKey, KeyType: "RANGE" },
    ]);
    const indexes = Object.fromEntries((Table?.GlobalSecondaryIndexes ?? []).map((i) => [i.IndexName, i.KeySchema]));
    expect(Object.keys(indexes).sort()).toEqual(Object.keys(tableDefinition.globalIndexes).sort());
    for (const [name, idx] of Object.entries(tableDefinition.globalIndexes)) {
      expect(indexes[name]).toEqual([
        { AttributeName: idx.partitionKey, KeyType: "HASH" },
        { AttributeName: idx.sortKey, KeyType: "RANGE" },
      ]);
    }
    const ttl = await ddb.send(new DescribeTimeToLiveCommand({ TableName: env.names.table }));
    expect(ttl.TimeToLiveDescription?.AttributeName).toBe(tableDefinition.ttlAttribute);
    expect(ttl.TimeToLiveDescription?.TimeToLiveStatus).toBe("ENABLED");
  });

  it("gives the jobs queue a redrive policy to its dead-letter queue", async () => {
    const attrs = await env.deps.sqs.send(new GetQueueAttributesCommand({ QueueUrl: env.deps.queueUrl, AttributeNames: ["All"] }));
    const dlq = await env.deps.sqs.send(new GetQueueAttributesCommand({ QueueUrl: env.dlqUrl, AttributeNames: ["QueueArn"] }));
    const policy = JSON.parse(attrs.Attributes?.RedrivePolicy ?? "{}") as { deadLetterTargetArn?: string; maxReceiveCount?: number | string };
    expect(policy.deadLetterTargetArn).toBe(dlq.Attributes?.QueueArn);
    expect(Number(policy.maxReceiveCount)).toBeGreaterThan(0);
  });

  it("creates the backups bucket", async () => {
    await expect(env.deps.s3.send(new HeadBucketCommand({ Bucket: env.names.bucket }))).resolves.toBeDefined();
  });
});

describe("demo database", () => {
  it("holds tables with foreign keys, an index, a sequence, a view and a few MB of rows", async () => {
    const db = await env.createDatabase({ demo: true });
    const tables = await env.query<{ table_name: string }>(
      db,
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    expect(tables.map((t) => t.table_name)).toEqual(["customers", "order_items", "orders", "products"]);
    const fks = await env.query<{ n: string }>(db, "SELECT count(*) AS n FROM pg_constraint WHERE contype = 'f'");
    expect(Number(fks[0]?.n)).toBeGreaterThanOrEqual(3);
    const views = await env.query(db, "SELECT 1 FROM pg_views WHERE viewname = 'customer_revenue'");
    expect(views).toHaveLength(1);
    const seqs = await env.query(db, "SELECT 1 FROM pg_sequences WHERE sequencename = 'invoice_number_seq'");
    expect(seqs).toHaveLength(1);
    const idx = await env.query(db, "SELECT 1 FROM pg_indexes WHERE indexname = 'orders_customer_idx'");
    expect(idx).toHaveLength(1);
    const size = await env.query<{ bytes: string }>(db, "SELECT pg_database_size(current_database()) AS bytes");
    expect(Number(size[0]?.bytes)).toBeGreaterThan(5 * 1024 * 1024);
    const revenue = await env.query<{ n: string }>(db, "SELECT count(*) AS n FROM customer_revenue");
    expect(Number(revenue[0]?.n)).toBeGreaterThan(1000);
  });
});

describe("seeding", () => {
  it("is idempotent: a second run finds the first run's records and key", async () => {
    const db = await env.createDatabase({ demo: false });
    const first = await seedLocal(env.deps, { clusterUrl: env.infra.postgresUrl, databaseName: db });
    const second = await seedLocal(env.deps, { clusterUrl: env.infra.postgresUrl, databaseName: db, previousApiKey: first.apiKey });
    expect(second).toEqual(first);
    const res = await env.app().request(`/v1/projects/${first.projectId}/backups`, { headers: { authorization: `Bearer ${first.apiKey}` } });
    expect(res.status, await res.clone().text()).toBe(200);
    // The local key reaches the project routes too, and the project says which server version it runs.
    const project = await env.app().request(`/v1/projects/${first.projectId}`, { headers: { authorization: `Bearer ${first.apiKey}` } });
    const shown = (await project.json()) as { project: { postgres_version: string | null } };
    expect(project.status, JSON.stringify(shown)).toBe(200);
    expect(shown.project.postgres_version).toMatch(/^\d+$/);
  });

  it("replaces a key from an older start that lacks a scope the routes need", async () => {
    const db = await env.createDatabase({ demo: false });
    const first = await seedLocal(env.deps, { clusterUrl: env.infra.postgresUrl, databaseName: db });
    const old = await createApiKey(env.deps, {
      organization_id: first.organizationId,
      name: "old-local",
      scopes: ["backups:read", "backups:write", "jobs:read"],
    });
    const second = await seedLocal(env.deps, { clusterUrl: env.infra.postgresUrl, databaseName: db, previousApiKey: old.key });
    expect(second.apiKey).not.toBe(old.key);
    const res = await env.app().request("/v1/projects", { headers: { authorization: `Bearer ${second.apiKey}` } });
    expect(res.status, await res.clone().text()).toBe(200);
  });
});

describe("GET /health", () => {
  it("reports each dependency, and a stopped one as down", async () => {
    const fq = await startFauxqs({ port: 0, logger: false, host: "localhost" });
    const endpoint = `http://127.0.0.1:${fq.port}`;
    const opts = { region: LOCAL_REGION, endpoint, credentials: { accessKeyId: "x", secretAccessKey: "x" }, maxAttempts: 1 };
    const sqs = new SQSClient(opts);
    const s3 = new S3Client({ ...opts, forcePathStyle: true });
    const { queueUrl } = await ensureQueues(sqs, "health");
    await ensureBucket(s3, "health");
    const app = env.app({ deps: { ...env.deps, sqs, s3, queueUrl, bucket: "health" } });

    const up = await app.request("/health");
    expect(up.status).toBe(200);
    expect(await up.json()).toEqual({ status: "ok", dependencies: { dynamodb: "up", sqs: "up", s3: "up" } });

    await fq.stop();
    const down = await app.request("/health");
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: "degraded", dependencies: { dynamodb: "up", sqs: "down", s3: "down" } });
  });
});
