import { transform } from "esbuild";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, SQSBatchResponse, SQSRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackupForWork } from "../../core/backups/backups.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { createCluster } from "../../core/orgs/orgs.ts";
import { taskEnv, type TaskLauncher } from "../../core/tasks/launcher.ts";
import { createDelivery, getDelivery, messageOf, testEvent } from "../../core/webhooks/deliveries.ts";
import { createEndpoint } from "../../core/webhooks/endpoints.ts";
import { ensureQueues } from "../../local/resources.ts";
import { type BundleName, buildFunction } from "../../scripts/build-functions.ts";
import { buildArchiver, buildTask } from "../../scripts/build-task.ts";
import { randomBytes } from "node:crypto";
import { enableArchive, restorableWindow } from "../../core/wal/archive.ts";
import { startPostgres } from "../../local/postgres.ts";
import { freePort, waitFor } from "../../local/wait.ts";
import { createTestEnv, type Tenant, type TestEnv, uniq } from "../support/env.ts";
import { startReceiver } from "../webhooks/support.ts";
import { fastOptions, objectBytes, postBackup, runQueueUntilSettled, sha256 } from "../worker/support.ts";
import { type DeployedStack, deployedStack, lambdaEnvironment, localOutputs, taskEnvironment } from "./deployed.ts";

/**
 * Every bundle as a deploy ships it, started the way Lambda and Fargate start it: a fresh Node 24
 * process whose environment is only what SST gives that entry point (read from the real
 * sst.config.ts: links sealed in resource.enc for a function, SST_RESOURCE_* and the task's
 * secrets for the task) plus what the platform itself sets. The local stack adds exactly two
 * things a deploy does not have: CAPYDB_AWS_ENDPOINT (the stand-ins' address) and, for deliver,
 * CAPYDB_WEBHOOKS_ALLOW_LOOPBACK_HTTP (the receiver is on 127.0.0.1). Each handler is invoked with
 * the event its trigger sends, against the local stack.
 */
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The runtime's Node (package.json's `node` devDependency), whatever runs vitest. */
const node24 = path.join(repoRoot, "node_modules/node/bin/node");
const work = mkdtempSync(path.join(tmpdir(), "capydb-invoke-"));
let env: TestEnv;
let tenant: Tenant;
let stack: DeployedStack;
let outputs: Record<string, unknown>;
let deliveryQueueUrl: string;
const bundles: Partial<Record<BundleName, string>> = {};
let taskBundle: string;
let archiverBundle: string;

/** What Lambda's runtime sets for every function (credentials are the stand-ins'). */
const lambdaRuntime = (): Record<string, string> => ({
  PATH: "/usr/local/bin:/usr/bin:/bin",
  LANG: "en_US.UTF-8",
  TZ: ":UTC",
  AWS_REGION: "us-east-1",
  AWS_DEFAULT_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "local",
  AWS_SECRET_ACCESS_KEY: "local",
  AWS_SESSION_TOKEN: "local",
  AWS_EXECUTION_ENV: "AWS_Lambda_nodejs24.x",
  CAPYDB_AWS_ENDPOINT: env.infra.endpoint,
});

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant();
  deliveryQueueUrl = (await ensureQueues(env.deps.sqs, uniq("wh"), { visibilityTimeoutSeconds: 30 })).queueUrl;
  // Deployed, verification restores go to a verification cluster (the deploy's CAPYDB_VERIFY_CLUSTER_ID).
  const verifyCluster = await createCluster(env.deps, { name: uniq("verify"), url: env.infra.postgresUrl, insecure_tls: true });
  stack = await deployedStack(repoRoot, { CAPYDB_VERIFY_CLUSTER_ID: verifyCluster.id });
  outputs = localOutputs({ ...env.names, queueUrl: env.deps.queueUrl, dlqUrl: env.dlqUrl, deliveryQueueUrl, secretKey: env.infra.secretKey });
  for (const name of ["api", "console", "worker", "dispatch", "deliver"] as const) {
    bundles[name] = (await buildFunction(name, path.join(work, "build"))).file;
  }
  taskBundle = await buildTask(path.join(work, "build", "task", "index.mjs"));
  archiverBundle = await buildArchiver(path.join(work, "build", "task", "archiver.mjs"));
}, 240_000);
afterAll(async () => {
  rmSync(work, { recursive: true, force: true });
  await env?.cleanup();
});

/** Lambda's bootstrap, reduced: import the handler module from the function's directory, call it per event. */
const runner = `
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const [, , file, eventsFile, outFile] = process.argv;
const { handler } = await import(pathToFileURL(file).href);
const results = [];
for (const event of JSON.parse(readFileSync(eventsFile, "utf8"))) {
  const context = { awsRequestId: "req-" + results.length, functionName: process.env.AWS_LAMBDA_FUNCTION_NAME, getRemainingTimeInMillis: () => 900000 };
  results.push((await handler(event, context)) ?? null);
}
writeFileSync(outFile, JSON.stringify(results));
process.exit(0);
`;

/** Runs `events` through a fresh process of one function, deployed as SST deploys it; returns the results. */
async function invoke<R = unknown>(name: BundleName, events: unknown[], extraEnv: Record<string, string> = {}): Promise<R[]> {
  // /var/task: the bundle as functions/<name>.mjs (SST's layout for handler functions/<name>.handler) and resource.enc
  const dir = mkdtempSync(path.join(work, `${name}-`));
  mkdirSync(path.join(dir, "functions"));
  const file = path.join(dir, "functions", `${name}.mjs`);
  cpSync(bundles[name]!, file);
  writeFileSync(path.join(dir, "runner.mjs"), runner);
  writeFileSync(path.join(dir, "events.json"), JSON.stringify(events));
  const processEnv = { ...lambdaEnvironment(name, stack, outputs, dir, lambdaRuntime()), ...extraEnv };
  const { code, stderr } = await run(node24, [path.join(dir, "runner.mjs"), file, path.join(dir, "events.json"), path.join(dir, "out.json")], dir, processEnv);
  expect(code, `${name} exited ${code}: ${stderr}`).toBe(0);
  return JSON.parse(readFileSync(path.join(dir, "out.json"), "utf8")) as R[];
}

function run(cmd: string, args: string[], cwd: string, processEnv: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: processEnv, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

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

function sqsRecord(id: string, body: string, queue = "jobs"): SQSRecord {
  return {
    messageId: id,
    receiptHandle: `handle-${id}`,
    body,
    attributes: { ApproximateReceiveCount: "1", SentTimestamp: String(Date.now()), SenderId: "x", ApproximateFirstReceiveTimestamp: String(Date.now()) },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: `arn:aws:sqs:us-east-1:123456789012:${queue}`,
    awsRegion: "us-east-1",
  };
}

type Http = APIGatewayProxyStructuredResultV2;

describe("built bundles, started as deployed (fresh Node 24 process, SST's environment only)", () => {
  let postedJobId: string | undefined;
  let completedBackupId: string | undefined;

  it("the processes run Node 24 and see no link as a plain variable", async () => {
    const { stdout } = await run(node24, ["--version"], work, {});
    expect(stdout.trim()).toMatch(/^v24\./);
    const fnEnv = lambdaEnvironment("api", stack, outputs, mkdtempSync(path.join(work, "probe-")), lambdaRuntime());
    expect(Object.keys(fnEnv).filter((k) => k.startsWith("SST_"))).toEqual(["SST_RESOURCE_App", "SST_KEY", "SST_KEY_FILE"]);
    expect(fnEnv).not.toHaveProperty("CAPYDB_TABLE");
    expect(fnEnv).not.toHaveProperty("CAPYDB_SECRET_KEY");
  });

  it("api: answers /health, creates and lists backups with a key, refuses a request without one (API Gateway HTTP API v2 events)", async () => {
    const key = await tenant.key();
    const auth = { authorization: `Bearer ${key}` };
    const [health, post, list, unauth] = await invoke<Http>("api", [
      httpEvent("GET", "/health", {}),
      httpEvent("POST", `/v1/projects/${tenant.projectId}/backups`, { ...auth, "content-type": "application/json" }, JSON.stringify({ label: "from lambda" })),
      httpEvent("GET", `/v1/projects/${tenant.projectId}/backups`, auth),
      httpEvent("GET", `/v1/projects/${tenant.projectId}/backups`, {}),
    ]);
    // The deployed API is not linked to the bucket, so its health covers what it uses.
    expect(health!.statusCode, health!.body).toBe(200);
    expect(JSON.parse(health!.body!)).toEqual({ status: "ok", dependencies: { dynamodb: "up", sqs: "up" } });
    expect(post!.statusCode, post!.body).toBe(202);
    postedJobId = JSON.parse(post!.body!).job.id;
    expect(list!.statusCode).toBe(200);
    expect(JSON.parse(list!.body!).backups[0]).toMatchObject({ label: "from lambda", state: "pending" });
    expect(unauth!.statusCode).toBe(401);
  });

  it("worker: completes the backup from its SQS event and reports exactly the failing record", async () => {
    expect(postedJobId, "the api test queued a backup").toBeDefined();
    const [res] = await invoke<SQSBatchResponse>("worker", [
      { Records: [sqsRecord("good", JSON.stringify({ job_id: postedJobId })), sqsRecord("poison", "{not json")] },
    ]);
    expect(res!.batchItemFailures).toEqual([{ itemIdentifier: "poison" }]);
    const done = await getJobItem(env.deps, postedJobId!);
    expect(done).toMatchObject({ state: "completed" });
    completedBackupId = done!.backup_id ?? undefined;
  });

  it("api: signs a download URL without an S3 client, and the URL fetches the dump the worker wrote", async () => {
    expect(completedBackupId, "the worker test made a backup").toBeDefined();
    const key = await tenant.key();
    const [res] = await invoke<Http>("api", [
      httpEvent("GET", `/v1/projects/${tenant.projectId}/backups/${completedBackupId}/download`, { authorization: `Bearer ${key}` }),
    ]);
    expect(res!.statusCode, res!.body).toBe(200);
    const { download } = JSON.parse(res!.body!);
    const url = new URL(download.download_url);
    expect(url.searchParams.get("X-Amz-Algorithm")).toBe("AWS4-HMAC-SHA256");
    expect(url.searchParams.get("X-Amz-Expires")).toBe("900");
    const object = await fetch(url);
    expect(object.status).toBe(200);
    const bytes = Buffer.from(await object.arrayBuffer());
    expect(bytes.length).toBe(download.size_bytes);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(download.sha256);
  });

  it("console: serves the pages and their static files from its bundle alone; /console is not the API's", async () => {
    const [page, script, missing] = await invoke<Http>("console", [
      httpEvent("GET", "/console", {}),
      httpEvent("GET", "/console/assets/console.js", {}),
      httpEvent("GET", "/console/nowhere", {}),
    ]);
    expect(page!.statusCode, page!.body).toBe(200);
    expect(page!.headers?.["content-security-policy"]).toContain("script-src 'self'");
    expect(script!.statusCode).toBe(200);
    expect(script!.headers?.["content-type"]).toBe("text/javascript; charset=utf-8");
    const source = readFileSync(path.join(repoRoot, "core/console/static/console.js"), "utf8");
    expect(script!.body).toBe((await transform(source, { loader: "js", minify: true, target: "es2020" })).code);
    expect(missing!.statusCode).toBe(404);
    expect(missing!.body).toContain("There is no console page at /console/nowhere");
    const [notApi] = await invoke<Http>("api", [httpEvent("GET", "/console", {})]);
    expect(notApi!.statusCode).toBe(404);
    expect(JSON.parse(notApi!.body!)).toEqual({ error: "no route for GET /console" });
  });

  it("dispatch: runs a tick from an EventBridge Scheduler event", async () => {
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
    expect(await invoke("dispatch", [event])).toEqual([null]);
  });

  it("deliver: sends a webhook delivery from its SQS event", async () => {
    const receiver = await startReceiver();
    try {
      const local = { ...env.deps, webhookPolicy: { allowLoopbackHttp: true } };
      const { item } = await createEndpoint(local, tenant.organizationId, { url: receiver.url });
      const delivery = await createDelivery({ ...local, deliveryQueueUrl: undefined }, item, testEvent(item, env.deps.now()));
      const [res] = await invoke<SQSBatchResponse>("deliver", [{ Records: [sqsRecord("d1", JSON.stringify(messageOf(delivery)), "deliveries")] }], {
        CAPYDB_WEBHOOKS_ALLOW_LOOPBACK_HTTP: "1",
      });
      expect(res!.batchItemFailures).toEqual([]);
      expect(receiver.requests).toHaveLength(1);
      expect(JSON.parse(receiver.requests[0]!.body)).toMatchObject({ type: "webhook.test" });
      expect(await getDelivery(env.deps, item.id, delivery.id)).toMatchObject({ state: "delivered", attempts: 1 });
    } finally {
      await receiver.close();
    }
  });

  it("task: the Fargate entry, started with the container environment SST's Task gives it, completes an offloaded backup", async () => {
    // The image's layout: /var/task/index.mjs, run as `node /var/task/index.mjs`.
    const dir = mkdtempSync(path.join(work, "task-"));
    cpSync(taskBundle, path.join(dir, "index.mjs"));
    // The secrets ECS resolves from Secrets Manager / SSM when it starts the container.
    const secretValues = { [String(outputs["<ClusterSecretKeyParameter.arn>"])]: env.infra.secretKey };
    const containerEnv = taskEnvironment(stack, outputs, secretValues, {
      PATH: "/usr/local/bin:/usr/bin:/bin",
      AWS_REGION: "us-east-1",
      AWS_DEFAULT_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      CAPYDB_AWS_ENDPOINT: env.infra.endpoint,
    });
    expect(containerEnv).not.toHaveProperty("CAPYDB_TABLE");
    // The key arrives as ECS resolves the task's `ssm` entry, not as a link (a plain variable of the task definition).
    expect(containerEnv).not.toHaveProperty("SST_RESOURCE_ClusterSecretKey");
    expect(containerEnv.CAPYDB_SECRET_KEY).toBe(env.infra.secretKey);
    let exit: Promise<{ code: number | null; stderr: string }> | undefined;
    // RunTask's container overrides (core/tasks/aws.ts), here as a child process.
    const launcher: TaskLauncher = {
      kind: "local",
      async launch(input) {
        const child = spawn(node24, [path.join(dir, "index.mjs")], {
          cwd: dir,
          env: { ...containerEnv, ...taskEnv(input), CAPYDB_TASK_LEASE_MS: "8000", CAPYDB_TASK_HEARTBEAT_MS: "1000" },
          stdio: ["ignore", "ignore", "pipe"],
        });
        let stderr = "";
        child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
        exit = new Promise((resolve) => child.once("exit", (code) => resolve({ code, stderr })));
        return { taskId: `local-task:${child.pid}` };
      },
    };
    const job = await postBackup(env, tenant, { label: "as a task" });
    const [settled] = await runQueueUntilSettled(env.deps, [job.id], { ...fastOptions, offload: { launcher, thresholdBytes: 1, leaseMs: 60_000 } }, 240_000);
    const { code, stderr } = await exit!;
    expect(code, stderr).toBe(0);
    expect(settled, JSON.stringify(settled)).toMatchObject({ state: "completed", error: null });
    expect(settled!.claimed_by).toMatch(/^local-task:\d+$/);
    const backup = await getBackupForWork(env.deps, settled!.project_id, settled!.backup_id!);
    expect(backup).toMatchObject({ state: "completed" });
    expect(sha256(await objectBytes(env.deps, backup!.backup_key))).toBe(backup!.sha256);
  }, 300_000);

  it("archiver: the Fargate service's entry, started with the container environment SST's Service gives it, archives a cluster; SIGTERM exits 0", async () => {
    // A cluster of its own with archiving on (wal_level=replica, a replication entry: local/postgres.ts).
    const pgServer = await startPostgres({
      dataDir: path.join(work, "archived-pg"),
      port: await freePort(),
      password: randomBytes(12).toString("hex"),
      settings: { wal_level: "replica" },
    });
    try {
      const cluster = await createCluster(env.deps, { name: uniq("archived"), url: `${pgServer.url}?sslmode=disable`, insecure_tls: true });
      await enableArchive(env.deps, cluster.id);
      // The image's layout: /var/task/archiver.mjs, run as the service's entrypoint `node /var/task/archiver.mjs`.
      expect(stack.archiver.entrypoint).toEqual(["node", "/var/task/archiver.mjs"]);
      const dir = mkdtempSync(path.join(work, "archiver-"));
      cpSync(archiverBundle, path.join(dir, "archiver.mjs"));
      const secretValues = { [String(outputs["<ClusterSecretKeyParameter.arn>"])]: env.infra.secretKey };
      const containerEnv = taskEnvironment(
        stack,
        outputs,
        secretValues,
        {
          PATH: "/usr/local/bin:/usr/bin:/bin",
          AWS_REGION: "us-east-1",
          AWS_DEFAULT_REGION: "us-east-1",
          AWS_ACCESS_KEY_ID: "local",
          AWS_SECRET_ACCESS_KEY: "local",
          CAPYDB_AWS_ENDPOINT: env.infra.endpoint,
        },
        "archiver",
      );
      expect(containerEnv).not.toHaveProperty("SST_RESOURCE_ClusterSecretKey");
      expect(containerEnv.CAPYDB_SECRET_KEY).toBe(env.infra.secretKey);
      // The spool on this machine's scratch space rather than the image's /tmp/capydb-wal (other runs share /tmp).
      const child = spawn(node24, [path.join(dir, "archiver.mjs")], {
        cwd: dir,
        env: { ...containerEnv, CAPYDB_WAL_SPOOL_DIR: path.join(dir, "wal") },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      try {
        await waitFor(async () => (await restorableWindow(env.deps, cluster.id)).available, {
          timeoutMs: 120_000,
          what: `the window to open (${stderr.slice(-500)})`,
        });
        const w = await restorableWindow(env.deps, cluster.id);
        expect(w.archive).toMatchObject({ enabled: true, receiver_error: null });
        expect(w.baseBackups[0]).toMatchObject({ state: "completed", trigger: "initial" });
        expect(w.lag_seconds).toBeLessThanOrEqual(30);
      } finally {
        child.kill("SIGTERM");
      }
      expect(await exited, stderr).toBe(0);
    } finally {
      await pgServer.stop();
    }
  }, 240_000);
});
