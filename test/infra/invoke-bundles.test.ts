import { transform } from "esbuild";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestBackup } from "../../core/backups/backups.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { getProject } from "../../core/orgs/orgs.ts";
import { buildFunction } from "../../scripts/build-functions.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";

/**
 * The built bundles (what a deploy ships), invoked with real Lambda event shapes against the
 * local stand-ins: configuration comes from the environment, as SST's links provide it.
 */
const outDir = mkdtempSync(path.join(tmpdir(), "capydb-invoke-"));
let env: TestEnv;
let tenant: Tenant;
let completedBackupId: string | undefined;
type Handler<E, R> = (event: E, context: Context) => Promise<R>;
type HttpHandler = Handler<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>;
const handlers: { api?: HttpHandler; console?: HttpHandler; worker?: Handler<SQSEvent, SQSBatchResponse>; dispatch?: Handler<unknown, void> } = {};

const context = { awsRequestId: "req-1", functionName: "test", getRemainingTimeInMillis: () => 900_000 } as unknown as Context;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant();
  Object.assign(process.env, env.serviceEnv(), { LOG_LEVEL: "ERROR" });
  for (const name of ["api", "console", "worker", "dispatch"] as const) {
    const built = await buildFunction(name, outDir);
    const mod = (await import(pathToFileURL(built.file).href)) as { handler: never };
    handlers[name] = mod.handler;
  }
}, 180_000);
afterAll(async () => {
  rmSync(outDir, { recursive: true, force: true });
  await env?.cleanup();
});

function httpEvent(method: string, rawPath: string, headers: Record<string, string>, body?: string): APIGatewayProxyEventV2 {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath,
    rawQueryString: "",
    headers: { host: "api.example.com", ...headers },
    requestContext: {
      accountId: "123456789012",
      apiId: "api",
      domainName: "api.example.com",
      domainPrefix: "api",
      http: { method, path: rawPath, protocol: "HTTP/1.1", sourceIp: "203.0.113.1", userAgent: "test" },
      requestId: "id",
      routeKey: "$default",
      stage: "$default",
      time: "26/Nov/2026:07:00:00 +0000",
      timeEpoch: Date.now(),
    },
    body,
    isBase64Encoded: false,
  };
}

function sqsRecord(id: string, body: string): SQSRecord {
  return {
    messageId: id,
    receiptHandle: `handle-${id}`,
    body,
    attributes: { ApproximateReceiveCount: "1", SentTimestamp: String(Date.now()), SenderId: "x", ApproximateFirstReceiveTimestamp: String(Date.now()) },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:jobs",
    awsRegion: "us-east-1",
  };
}

describe("built bundles", () => {
  it("api: answers an API Gateway HTTP API v2 event", async () => {
    const key = await tenant.key();
    const post = await handlers.api!(
      httpEvent("POST", `/v1/projects/${tenant.projectId}/backups`, { authorization: `Bearer ${key}`, "content-type": "application/json" }, JSON.stringify({ label: "from lambda" })),
      context,
    );
    expect(post.statusCode, post.body).toBe(202);
    const list = await handlers.api!(httpEvent("GET", `/v1/projects/${tenant.projectId}/backups`, { authorization: `Bearer ${key}` }), context);
    expect(list.statusCode).toBe(200);
    expect(JSON.parse(list.body!).backups[0]).toMatchObject({ label: "from lambda", state: "pending" });
    const unauth = await handlers.api!(httpEvent("GET", `/v1/projects/${tenant.projectId}/backups`, {}), context);
    expect(unauth.statusCode).toBe(401);
    // The deployed API is not linked to the bucket, so its health covers what it uses.
    const health = await handlers.api!(httpEvent("GET", "/health", {}), context);
    expect(JSON.parse(health.body!)).toEqual({ status: "ok", dependencies: { dynamodb: "up", sqs: "up" } });
  });

  it("console: serves the pages and their static files from its bundle alone (inlined at build); the API bundle has none", async () => {
    const page = await handlers.console!(httpEvent("GET", "/console", {}), context);
    expect(page.statusCode, page.body).toBe(200);
    expect(page.headers?.["content-security-policy"]).toContain("script-src 'self'");
    const src = /\/console\/assets\/console\.js\?v=[0-9a-f]{12}/.exec(page.body!)?.[0];
    expect(src, page.body).toBeDefined();
    const script = await handlers.console!(httpEvent("GET", "/console/assets/console.js", {}), context);
    expect(script.statusCode).toBe(200);
    expect(script.headers?.["content-type"]).toBe("text/javascript; charset=utf-8");
    // The source file, minified by the build (scripts/esbuild-plugins.mjs).
    const source = readFileSync(path.join(import.meta.dirname, "../../core/console/static/console.js"), "utf8");
    expect(script.body).toBe((await transform(source, { loader: "js", minify: true, target: "es2020" })).code);
    // A page the console does not have is its own 404 page; /console is not the API's any more.
    const missing = await handlers.console!(httpEvent("GET", "/console/nowhere", {}), context);
    expect(missing.statusCode).toBe(404);
    expect(missing.body).toContain("There is no console page at /console/nowhere");
    const notApi = await handlers.api!(httpEvent("GET", "/console", {}), context);
    expect(notApi.statusCode).toBe(404);
    expect(JSON.parse(notApi.body!)).toEqual({ error: "no route for GET /console" });
  });

  it("worker: runs the valid job of an SQS batch and reports exactly the failing record", async () => {
    const project = (await getProject(env.deps, tenant.projectId))!;
    const { job } = await requestBackup(env.deps, project, { label: "bundle worker" });
    const res = await handlers.worker!(
      { Records: [sqsRecord("good", JSON.stringify({ job_id: job.id })), sqsRecord("poison", "{not json")] },
      context,
    );
    expect(res.batchItemFailures).toEqual([{ itemIdentifier: "poison" }]);
    const done = await getJobItem(env.deps, job.id);
    expect(done).toMatchObject({ state: "completed" });
    completedBackupId = job.backup_id ?? undefined;
  });

  it("api: signs a download URL without an S3 client, and the URL fetches the dump the worker wrote", async () => {
    expect(completedBackupId, "the worker test made a backup").toBeDefined();
    const key = await tenant.key();
    const res = await handlers.api!(httpEvent("GET", `/v1/projects/${tenant.projectId}/backups/${completedBackupId}/download`, { authorization: `Bearer ${key}` }), context);
    expect(res.statusCode, res.body).toBe(200);
    const { download } = JSON.parse(res.body!);
    const url = new URL(download.download_url);
    expect(url.searchParams.get("X-Amz-Algorithm")).toBe("AWS4-HMAC-SHA256");
    expect(url.searchParams.get("X-Amz-Expires")).toBe("900");
    expect(url.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    const object = await fetch(url);
    expect(object.status).toBe(200);
    const bytes = Buffer.from(await object.arrayBuffer());
    expect(bytes.length).toBe(download.size_bytes);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(download.sha256);
  });

  it("dispatch: completes an EventBridge Scheduler invocation", async () => {
    const event = {
      version: "0",
      id: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
      "detail-type": "Scheduled Event",
      source: "aws.scheduler",
      account: "123456789012",
      time: new Date().toISOString(),
      region: "us-east-1",
      resources: ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/dispatch"],
      detail: {},
    };
    await expect(handlers.dispatch!(event, context)).resolves.toBeUndefined();
  });
});
