import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { deliveriesQueue, functions, queue, tableArgs } from "../../infra/settings.ts";
import { type Created, find, installStandIns, loadSstConfig, ref, removeStandIns } from "./sst-standins.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Names of the resources a function's `link` points at (the stand-ins keep `$name`). */
const linkNames = (fnArgs: any): string[] => fnArgs.link.map((r: any) => r.$name).sort();

describe("sst.config.ts wiring (recording stand-ins, no AWS)", () => {
  let created: Created[];
  let outputs: Record<string, unknown>;
  let config: Awaited<ReturnType<typeof loadSstConfig>>;

  beforeEach(async () => {
    // prepare: a published layer ARN, so the run does not look for a built layer directory
    vi.resetModules();
    vi.stubEnv("CAPYDB_PG_LAYER_ARN", "arn:aws:lambda:us-east-1:123456789012:layer:pg:1");
    created = installStandIns({ root: repoRoot });
    config = await loadSstConfig(repoRoot);
    // act
    outputs = await config.run();
  });

  afterEach(() => {
    vi.unstubAllEnvs();
    removeStandIns();
  });

  it("names the app, keeps production's data and protects production", () => {
    expect(config.app({ stage: "production" })).toMatchObject({
      name: "capydb-backups",
      home: "aws",
      removal: "retain",
      protect: true,
    });
    expect(config.app({ stage: "pr-12" })).toMatchObject({ removal: "remove", protect: false });
  });

  it("creates the table from the shared definition, with point-in-time recovery", () => {
    const table = find(created, "sst.aws.Dynamo", "Table");
    expect(table.args).toMatchObject(tableArgs);
    expect(table.args.transform.table.pointInTimeRecovery).toEqual({ enabled: true });
  });

  it("gives the jobs queue its dead-letter queue, retry count and visibility timeout", () => {
    const jobs = find(created, "sst.aws.Queue", "Jobs");
    find(created, "sst.aws.Queue", "JobsDlq");
    expect(jobs.args.dlq).toEqual({ queue: ref("JobsDlq", "arn"), retry: 5 });
    expect(jobs.args.visibilityTimeout).toBe(queue.visibilityTimeout);
  });

  it("subscribes the worker with partial batch responses, the layer and its links", () => {
    const jobs = find(created, "sst.aws.Queue", "Jobs");
    expect(jobs.calls.map((c) => c.method)).toEqual(["subscribe"]);
    const [fnArgs, subArgs] = jobs.calls[0]!.args;
    expect(subArgs.batch.partialResponses).toBe(true);
    expect(subArgs.transform.eventSourceMapping.scalingConfig.maximumConcurrency).toBeGreaterThanOrEqual(2);
    expect(fnArgs).toMatchObject({
      handler: "functions/worker.handler",
      runtime: "nodejs24.x",
      architecture: "arm64",
      timeout: "15 minutes",
      memory: functions.worker.memory,
      environment: { CAPYDB_PG_BIN_DIRS: "/opt/pgsql", CAPYDB_REQUIRE_VERIFY_CLUSTER: "1" },
      layers: ["arn:aws:lambda:us-east-1:123456789012:layer:pg:1"],
    });
    expect(linkNames(fnArgs)).toEqual(["Backups", "ClusterSecretKey", "Jobs", "Table"]);
  });

  it("serves the API from one $default route, linked to what it uses, with s3:GetObject on the bucket's objects only", () => {
    const api = find(created, "sst.aws.ApiGatewayV2", "Api");
    const defaults = api.calls.filter((c) => c.args[0] === "$default");
    expect(defaults).toHaveLength(1);
    const [, fnArgs] = defaults[0]!.args;
    expect(fnArgs).toMatchObject({
      handler: "functions/api.handler",
      runtime: "nodejs24.x",
      architecture: "arm64",
      environment: { CAPYDB_BUCKET: ref("Backups", "name") },
    });
    expect(linkNames(fnArgs)).toEqual(["ClerkAuthorizedParties", "ClerkIssuer", "ClerkJwksUrl", "ClusterSecretKey", "Deliveries", "Jobs", "Table"].sort());
    // Signing download URLs needs read access to the objects and nothing else: no link to the
    // bucket, no bucket-level resource (the whole policy: test/infra/iam.test.ts).
    const s3 = JSON.parse(fnArgs.transform.role.inlinePolicies[0].policy).Statement.filter((s: any) => s.Action.some((a: string) => a.startsWith("s3:")));
    expect(s3).toEqual([{ Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${ref("Backups", "arn")}/*`] }]);
  });

  it("sends /console and everything under it to the console's own function, which is linked to the Clerk switch only", () => {
    const api = find(created, "sst.aws.ApiGatewayV2", "Api");
    const consoleFn = find(created, "sst.aws.Function", "Console");
    // Every route but $default, and what it points at: the one console function, by ARN.
    expect(api.calls.filter((c) => c.args[0] !== "$default").map((c) => c.args.slice(0, 2))).toEqual([
      ["ANY /console", ref("Console", "arn")],
      ["ANY /console/{proxy+}", ref("Console", "arn")],
    ]);
    expect(consoleFn.args).toMatchObject({
      handler: "functions/console.handler",
      runtime: "nodejs24.x",
      architecture: "arm64",
      timeout: functions.console.timeout,
      memory: functions.console.memory,
    });
    // No table, queue, bucket or key: the pages hold no data and need no credential.
    expect(linkNames(consoleFn.args)).toEqual(["ClerkIssuer", "ClerkJwksUrl"]);
    expect(consoleFn.args.permissions).toBeUndefined();
    expect(consoleFn.args.transform.role.inlinePolicies).toEqual([]);
    expect(consoleFn.args.environment).toEqual({});
  });

  it("ticks the dispatcher every minute", () => {
    const cron = find(created, "sst.aws.CronV2", "Dispatch");
    expect(cron.args).toMatchObject({
      schedule: "rate(1 minute)",
      retries: 0,
      function: { handler: "functions/dispatch.handler", runtime: "nodejs24.x" },
    });
    expect(linkNames(cron.args.function)).toEqual(["Backups", "ClusterSecretKey", "Deliveries", "Jobs", "Table"]);
  });

  it("gives webhook deliveries their own queue with a dead-letter queue, and a delivery function linked to the table and that queue", () => {
    const deliveries = find(created, "sst.aws.Queue", "Deliveries");
    find(created, "sst.aws.Queue", "DeliveriesDlq");
    expect(deliveries.args.dlq).toEqual({ queue: ref("DeliveriesDlq", "arn"), retry: deliveriesQueue.dlqRetry });
    expect(deliveries.args.visibilityTimeout).toBe(deliveriesQueue.visibilityTimeout);
    expect(deliveries.calls.map((c) => c.method)).toEqual(["subscribe"]);
    const [fnArgs, subArgs] = deliveries.calls[0]!.args;
    expect(subArgs.batch).toEqual({ size: 10, partialResponses: true });
    expect(fnArgs).toMatchObject({
      handler: "functions/deliver.handler",
      runtime: "nodejs24.x",
      architecture: "arm64",
      timeout: functions.deliver.timeout,
      // names the configuration requires, without the permissions a link would grant
      environment: { CAPYDB_BUCKET: ref("Backups", "name"), CAPYDB_QUEUE_URL: ref("Jobs", "url") },
    });
    // the sealed endpoint secrets need the service key; nothing else
    expect(linkNames(fnArgs)).toEqual(["ClusterSecretKey", "Deliveries", "Table"]);
    expect(fnArgs.layers).toBeUndefined();
  });

  it("bundles every function as scripts/build-functions.ts does", () => {
    const all = [
      find(created, "sst.aws.Queue", "Jobs").calls[0]!.args[0],
      find(created, "sst.aws.ApiGatewayV2", "Api").calls.find((c) => c.args[0] === "$default")!.args[1],
      find(created, "sst.aws.CronV2", "Dispatch").args.function,
      find(created, "sst.aws.Queue", "Deliveries").calls[0]!.args[0],
      find(created, "sst.aws.Function", "Console").args,
    ];
    for (const fn of all) {
      expect(fn.nodejs, fn.handler).toEqual({
        format: "esm",
        minify: true,
        plugins: "scripts/esbuild-plugins.mjs",
      });
    }
  });

  it("blocks public access, encrypts and aborts stale multipart uploads on the bucket", () => {
    const bucket = find(created, "sst.aws.Bucket", "Backups");
    expect(bucket.args.access).toBeUndefined();
    expect(bucket.args.public).toBeUndefined();
    expect(bucket.args.transform.publicAccessBlock).toEqual({
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    const sse = find(created, "aws.s3.BucketServerSideEncryptionConfiguration");
    expect(sse.args.bucket).toBe(ref("Backups", "name"));
    expect(sse.args.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm).toBe("AES256");
    const lifecycle = find(created, "aws.s3.BucketLifecycleConfiguration");
    expect(lifecycle.args.bucket).toBe(ref("Backups", "name"));
    expect(lifecycle.args.rules).toContainEqual(
      expect.objectContaining({
        status: "Enabled",
        abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
      }),
    );
  });

  it("declares the secrets, the cluster key without a placeholder", () => {
    const secrets = Object.fromEntries(created.filter((c) => c.type === "sst.Secret").map((c) => [c.name, c.args]));
    expect(secrets).toEqual({
      ClusterSecretKey: undefined,
      ClerkJwksUrl: "",
      ClerkIssuer: "",
      ClerkAuthorizedParties: "",
    });
  });

  it("outputs what capydb-admin reads", () => {
    expect(outputs).toEqual({
      ApiUrl: ref("Api", "url"),
      CAPYDB_TABLE: ref("Table", "name"),
      CAPYDB_QUEUE_URL: ref("Jobs", "url"),
      CAPYDB_DLQ_URL: ref("JobsDlq", "url"),
      CAPYDB_BUCKET: ref("Backups", "name"),
      CAPYDB_DELIVERY_QUEUE_URL: ref("Deliveries", "url"),
      EgressIps: [ref("Egress1", "publicIp"), ref("Egress2", "publicIp")],
      AlarmTopicArn: ref("Alarms", "arn"),
      Dashboard: ref("Dashboard", "dashboardName"),
    });
  });

  it("verifies on a verification cluster: the worker and the task require one, named by the deploy's environment", async () => {
    vi.resetModules();
    vi.stubEnv("CAPYDB_VERIFY_CLUSTER_ID", "cls_01m8bbd943485gy3g6c722w2d4");
    const again = installStandIns({ root: repoRoot });
    await (await loadSstConfig(repoRoot)).run();
    const worker = find(again, "sst.aws.Queue", "Jobs").calls[0]!.args[0];
    const task = find(again, "sst.aws.Task", "LargeJobs").args;
    for (const env of [worker.environment, task.environment]) {
      expect(env).toMatchObject({ CAPYDB_REQUIRE_VERIFY_CLUSTER: "1", CAPYDB_VERIFY_CLUSTER_ID: "cls_01m8bbd943485gy3g6c722w2d4" });
    }
  });

  it("alarms to the topic on dead letters, old job messages, function errors and throttles, a failing dispatcher phase and stale backups", () => {
    const alarms = created.filter((c) => c.type === "aws.cloudwatch.MetricAlarm");
    for (const a of alarms) expect(a.args.alarmActions, a.name).toEqual([ref("Alarms", "arn")]);
    const by = (name: string) => alarms.find((a) => a.name === name)!.args;
    expect(by("JobsDlqDepth")).toMatchObject({
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: ref("JobsDlq.nodes.queue", "name") },
      threshold: 0,
    });
    expect(by("DeliveriesDlqDepth").dimensions).toEqual({ QueueName: ref("DeliveriesDlq.nodes.queue", "name") });
    expect(by("JobsOldestMessage")).toMatchObject({ metricName: "ApproximateAgeOfOldestMessage", dimensions: { QueueName: ref("Jobs.nodes.queue", "name") } });
    for (const fn of ["Api", "Worker", "Dispatch", "Deliver", "Console"]) {
      expect(by(`${fn}Errors`)).toMatchObject({ namespace: "AWS/Lambda", metricName: "Errors" });
      expect(by(`${fn}Throttles`)).toMatchObject({ namespace: "AWS/Lambda", metricName: "Throttles", threshold: 0 });
    }
    expect(by("WorkerErrors").dimensions).toEqual({ FunctionName: ref("Jobs.subscribe1.function", "name") });
    // The dispatcher's own metrics (core/dispatch/metrics.ts); a staleness figure that stops arriving breaches.
    expect(by("DispatchPhaseFailing")).toMatchObject({
      namespace: "CapyDB",
      metricName: "DispatchPhaseFailures",
      dimensions: { service: "dispatch" },
      threshold: 0,
    });
    expect(by("BackupStaleness")).toMatchObject({ namespace: "CapyDB", metricName: "StaleProjects", treatMissingData: "breaching", threshold: 0 });
    const dashboard = JSON.parse(find(created, "aws.cloudwatch.Dashboard", "Dashboard").args.dashboardBody);
    expect(dashboard.widgets.map((w: any) => w.properties.title)).toContain("WAL archive: worst lag (s), open gaps, failing base backups");
  });

  it("alarms on the WAL archive: lag above 2 minutes (also when the figure stops), an open gap, a failing base backup, slot WAL above 1 GiB", () => {
    const alarms = created.filter((c) => c.type === "aws.cloudwatch.MetricAlarm");
    const by = (name: string) => alarms.find((a) => a.name === name)?.args;
    const common = {
      namespace: "CapyDB",
      dimensions: { service: "dispatch" },
      comparisonOperator: "GreaterThanThreshold",
      alarmActions: [ref("Alarms", "arn")],
    };
    expect(by("WalArchiveLag")).toMatchObject({
      ...common,
      metricName: "WalArchiveLagSeconds",
      statistic: "Maximum",
      threshold: 120,
      treatMissingData: "breaching",
    });
    expect(by("WalArchiveGap")).toMatchObject({ ...common, metricName: "WalArchiveOpenGaps", threshold: 0 });
    expect(by("BaseBackupFailing")).toMatchObject({ ...common, metricName: "BaseBackupFailing", threshold: 0 });
    expect(by("WalSlotRetained")).toMatchObject({ ...common, metricName: "WalSlotRetainedBytes", threshold: 1024 ** 3 });
  });
});

describe("sst.config.ts: the pg layer", () => {
  let root: string;

  beforeEach(() => {
    vi.resetModules();
    vi.stubEnv("CAPYDB_PG_LAYER_ARN", "");
    root = mkdtempSync(path.join(tmpdir(), "capydb-layer-"));
  });

  afterEach(() => {
    vi.unstubAllEnvs();
    removeStandIns();
    rmSync(root, { recursive: true, force: true });
  });

  const writeLayer = (arch: string) => {
    mkdirSync(path.join(root, "dist/pg-layer/pgsql/18/bin"), { recursive: true });
    writeFileSync(path.join(root, "dist/pg-layer.json"), JSON.stringify({ arch, majors: [16, 17, 18] }));
  };

  it("publishes a built layer for the worker's architecture and attaches it", async () => {
    // prepare
    writeLayer("arm64");
    const created = installStandIns({ root });
    // act
    await (await loadSstConfig(repoRoot)).run();
    // assess
    const layer = find(created, "aws.lambda.LayerVersion", "PgTools");
    expect(layer.args).toMatchObject({
      compatibleArchitectures: ["arm64"],
      compatibleRuntimes: ["nodejs24.x"],
      layerName: "capydb-backups-test-pgtools",
    });
    // The zip the deploy writes with modes kept (scripts/zip-dir.ts), not the directory.
    expect(layer.args.code.path).toBe(path.join(root, "dist/pg-layer.zip"));
    expect(existsSync(layer.args.code.path)).toBe(true);
    const [fnArgs] = find(created, "sst.aws.Queue", "Jobs").calls[0]!.args;
    expect(fnArgs.layers).toEqual([ref("PgTools", "arn")]);
  });

  it("refuses a deploy without a built layer, saying what to run", async () => {
    installStandIns({ root });
    await expect((await loadSstConfig(repoRoot)).run()).rejects.toThrow(/build-pg-layer\.sh/);
  });

  it("refuses a layer built for another architecture", async () => {
    writeLayer("x86_64");
    installStandIns({ root });
    await expect((await loadSstConfig(repoRoot)).run()).rejects.toThrow(/built for x86_64/);
  });
});
