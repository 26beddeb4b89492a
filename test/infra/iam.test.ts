import { readFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataProtection, functions, grants, secrets, secretVariables, task, workerMaxConcurrency, apiThrottle } from "../../infra/settings.ts";
import { buildFunction, type BundleName } from "../../scripts/build-functions.ts";
import { archiverSources, taskSources } from "../../scripts/build-task.ts";
import { type DeployedStack, deployedStack } from "./deployed.ts";
import { find, ref } from "./sst-standins.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const outDir = mkdtempSync(path.join(tmpdir(), "capydb-iam-"));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

/**
 * The IAM actions a call in the source needs: AWS SDK v3 commands (lib-dynamodb's included),
 * lib-storage's multipart Upload, a presigned GET, and ECS RunTask through SST's task.run.
 * TransactWriteItems is authorized per item: Put/Update/Delete plus ConditionCheckItem.
 */
const actionsOf: Record<string, string[]> = {
  GetCommand: ["dynamodb:GetItem"],
  PutCommand: ["dynamodb:PutItem"],
  UpdateCommand: ["dynamodb:UpdateItem"],
  DeleteCommand: ["dynamodb:DeleteItem"],
  QueryCommand: ["dynamodb:Query"],
  BatchGetCommand: ["dynamodb:BatchGetItem"],
  TransactWriteCommand: ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"],
  DescribeTableCommand: ["dynamodb:DescribeTable"],
  SendMessageBatchCommand: ["sqs:SendMessage"],
  SendMessageCommand: ["sqs:SendMessage"],
  ChangeMessageVisibilityCommand: ["sqs:ChangeMessageVisibility"],
  GetQueueAttributesCommand: ["sqs:GetQueueAttributes"],
  GetObjectCommand: ["s3:GetObject"],
  DeleteObjectCommand: ["s3:DeleteObject"],
  AbortMultipartUploadCommand: ["s3:AbortMultipartUpload"],
  CopyObjectCommand: ["s3:GetObject", "s3:PutObject"],
  PutObjectCommand: ["s3:PutObject"],
  Upload: ["s3:PutObject"],
  presignGet: ["s3:GetObject"],
  "task.run": ["ecs:RunTask"],
};

/** The actions the code of one bundle calls: every call site in the repository's files it holds. */
function calledActions(sources: string[], hasS3Client: boolean): Set<string> {
  const found = new Set<string>();
  for (const file of sources) {
    const text = readFileSync(path.join(repoRoot, file), "utf8");
    for (const m of text.matchAll(/new (\w+Command)\(|new (Upload)\(|\.(presignGet)\(|(task\.run)\(/g)) {
      const call = m.slice(1).find(Boolean)!;
      const actions = actionsOf[call];
      if (!actions) throw new Error(`${file} calls ${call}: add its IAM actions to this test's table`);
      // Without an S3 client in the bundle (the API), the S3 calls of shared modules cannot run.
      if (!hasS3Client && actions.some((a) => a.startsWith("s3:")) && call !== "presignGet") continue;
      for (const a of actions) found.add(a);
    }
  }
  return found;
}

const granted = (name: keyof typeof grants, opts: { trigger: boolean }) =>
  new Set(grants[name].filter((g) => opts.trigger || !("trigger" in g)).flatMap((g) => g.actions));

describe("IAM: each entry point gets exactly the actions its code calls", () => {
  for (const name of ["api", "worker", "dispatch", "deliver", "console"] as const satisfies BundleName[]) {
    it(`${name}: its grants in infra/settings.ts are the actions of the calls in its bundle`, { timeout: 60_000 }, async () => {
      const built = await buildFunction(name, outDir);
      const hasS3 = built.byPackage.some((p) => p.name === "@aws-sdk/client-s3");
      const called = calledActions(built.sources, hasS3);
      // RunTask is the worker's, granted beside the task it may start (infra/worker.ts).
      called.delete("ecs:RunTask");
      expect([...granted(name, { trigger: false })].sort()).toEqual([...called].sort());
    });
  }

  it("task: its grants are the actions of the calls in its bundle", { timeout: 60_000 }, async () => {
    const called = calledActions(await taskSources(path.join(outDir, "task.mjs")), true);
    called.delete("ecs:RunTask");
    expect([...granted("task", { trigger: false })].sort()).toEqual([...called].sort());
  });

  it("archiver: its grants are the actions of the calls in its bundle", { timeout: 60_000 }, async () => {
    const called = calledActions(await archiverSources(path.join(outDir, "archiver.mjs")), true);
    expect([...granted("archiver", { trigger: false })].sort()).toEqual([...called].sort());
  });
});

describe("IAM: every role's whole policy is its grants (recording stand-ins, no AWS)", () => {
  let stack: DeployedStack;
  beforeAll(async () => {
    stack = await deployedStack(repoRoot);
  });

  const policyOf = (args: any): { Action: string[]; Resource: string[]; Condition?: unknown }[] =>
    JSON.parse(args.transform.role.inlinePolicies[0].policy).Statement;
  const fnArgs = (name: string): any => {
    const c = stack.created;
    if (name === "api") return find(c, "sst.aws.ApiGatewayV2", "Api").calls.find((x) => x.args[0] === "$default")!.args[1];
    if (name === "console") return find(c, "sst.aws.Function", "Console").args;
    if (name === "worker") return find(c, "sst.aws.Queue", "Jobs").calls[0]!.args[0];
    if (name === "dispatch") return find(c, "sst.aws.CronV2", "Dispatch").args.function;
    return find(c, "sst.aws.Queue", "Deliveries").calls[0]!.args[0];
  };

  it("replaces SST's link-derived policy: no wildcard action, no table, queue or bucket administration", () => {
    for (const name of ["api", "worker", "dispatch", "deliver"]) {
      const statements = policyOf(fnArgs(name));
      const actions = statements.flatMap((s) => s.Action);
      expect(
        actions.filter((a) => a.includes("*")),
        name,
      ).toEqual([]);
      for (const forbidden of ["dynamodb:DeleteTable", "dynamodb:Scan", "sqs:DeleteQueue", "sqs:PurgeQueue", "s3:DeleteBucket", "s3:PutBucketPolicy"]) {
        expect(actions, name).not.toContain(forbidden);
      }
      expect(fnArgs(name).permissions, `${name}: SST would merge the links' rights into permissions`).toBeUndefined();
    }
    expect(fnArgs("console").transform.role.inlinePolicies).toEqual([]);
  });

  it("grants each action on the resources it names only", () => {
    const api = policyOf(fnArgs("api"));
    expect(api).toContainEqual({ Effect: "Allow", Action: ["s3:GetObject"], Resource: [`${ref("Backups", "arn")}/*`] });
    expect(api).toContainEqual(expect.objectContaining({ Resource: [ref("Table", "arn"), `${ref("Table", "arn")}/index/*`] }));
    const worker = policyOf(fnArgs("worker"));
    // What Lambda's SQS poller needs, on the jobs queue only; RunTask on its task definition in its cluster.
    expect(worker).toContainEqual({
      Effect: "Allow",
      Action: ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
      Resource: [ref("Jobs", "arn")],
    });
    expect(worker).toContainEqual({
      Effect: "Allow",
      Action: ["ecs:RunTask"],
      Resource: [ref("LargeJobs", "taskDefinition")],
      Condition: { ArnEquals: { "ecs:cluster": [ref("LargeJobs", "cluster")] } },
    });
    const deliver = policyOf(fnArgs("deliver"));
    expect(deliver.flatMap((s) => s.Resource)).not.toContain(ref("Jobs", "arn"));
    const taskArgs = find(stack.created, "sst.aws.Task", "LargeJobs").args;
    const taskPolicy = JSON.parse(taskArgs.transform.taskRole.inlinePolicies[0].policy).Statement;
    expect(taskPolicy.flatMap((s: any) => s.Action).sort()).toEqual([...granted("task", { trigger: true })].sort());
  });
});

describe("no secret as a plain variable", () => {
  const secretNames = Object.keys(secrets);
  const secretVars = Object.values(secretVariables);

  it("in the settings: no function or task environment names a secret's variable, and the task links no secret", () => {
    for (const [name, fn] of Object.entries(functions)) {
      expect(
        Object.keys(("environment" in fn ? fn.environment : undefined) ?? {}).filter((k) => secretVars.includes(k)),
        name,
      ).toEqual([]);
    }
    expect(Object.keys(task.environment).filter((k) => secretVars.includes(k))).toEqual([]);
    // A Task turns each link into a plain SST_RESOURCE_<Name> variable of its task definition.
    expect(task.link.filter((l) => secretNames.includes(l))).toEqual([]);
    expect(task.secrets).toEqual({ CAPYDB_SECRET_KEY: "ClusterSecretKey" });
  });

  it("in the deployed stack: the task's key comes from a SecureString parameter its execution role alone may read", async () => {
    const stack = await deployedStack(repoRoot);
    const everyEnv = [...Object.values(stack.functions).map((f) => f.environment), stack.task.environment];
    for (const env of everyEnv) {
      for (const value of Object.values(env)) {
        for (const secret of secretNames) expect(String(value)).not.toContain(`<${secret}.value>`);
      }
    }
    expect(stack.task.link).not.toContain("ClusterSecretKey");
    expect(stack.task.ssm).toEqual({ CAPYDB_SECRET_KEY: ref("ClusterSecretKeyParameter", "arn") });
    const parameter = find(stack.created, "aws.ssm.Parameter", "ClusterSecretKeyParameter");
    expect(parameter.args).toMatchObject({ type: "SecureString", value: ref("ClusterSecretKey", "value"), name: "/capydb-backups/test/ClusterSecretKey" });
    const taskArgs = find(stack.created, "sst.aws.Task", "LargeJobs").args;
    expect(JSON.parse(taskArgs.transform.executionRole.inlinePolicies[0].policy).Statement).toEqual([
      { Effect: "Allow", Action: ["ssm:GetParameters"], Resource: [ref("ClusterSecretKeyParameter", "arn")] },
    ]);
  });
});

describe("a backup store that is hard to destroy, and bounded load", () => {
  it("versions the bucket, expires old versions after the window, and protects production's table", async () => {
    const stack = await deployedStack(repoRoot);
    expect(find(stack.created, "sst.aws.Bucket", "Backups").args.versioning).toBe(true);
    const rules = find(stack.created, "aws.s3.BucketLifecycleConfiguration").args.rules;
    expect(rules).toContainEqual(
      expect.objectContaining({ status: "Enabled", noncurrentVersionExpiration: { noncurrentDays: dataProtection.noncurrentVersionDays } }),
    );
    expect(find(stack.created, "sst.aws.Dynamo", "Table").args.transform.table.deletionProtectionEnabled).toBe(false); // stage "test"
    expect(dataProtection.tableDeletionProtection("production")).toBe(true);
  });

  it("caps the worker's event source, reserves concurrency for the API and throttles its stage", async () => {
    const stack = await deployedStack(repoRoot);
    const [, sub] = find(stack.created, "sst.aws.Queue", "Jobs").calls[0]!.args;
    expect(sub.transform.eventSourceMapping.scalingConfig).toEqual({ maximumConcurrency: workerMaxConcurrency });
    expect(workerMaxConcurrency).toBeGreaterThanOrEqual(2); // Lambda's floor for an SQS maximum concurrency
    const api = find(stack.created, "sst.aws.ApiGatewayV2", "Api");
    expect(api.args.transform.stage.defaultRouteSettings).toEqual({ throttlingRateLimit: apiThrottle.rateLimit, throttlingBurstLimit: apiThrottle.burstLimit });
    const apiFn = api.calls.find((c) => c.args[0] === "$default")!.args[1];
    expect(apiFn.concurrency).toEqual({ reserved: functions.api.reservedConcurrency });
  });
});
