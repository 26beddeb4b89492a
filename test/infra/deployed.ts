/**
 * What `sst deploy` gives each entry point, read from the real sst.config.ts (recording stand-ins,
 * no AWS) and made concrete for the local stack: a Lambda function gets its links sealed in
 * `resource.enc` beside its code and only `SST_RESOURCE_App`, `SST_KEY`, `SST_KEY_FILE` and its own
 * `environment` (.sst/platform/src/components/aws/function.ts); the Fargate task gets its
 * `environment`, one `SST_RESOURCE_<Link>` variable per link and `SST_RESOURCE_App`
 * (.sst/platform/src/components/aws/fargate.ts), plus the `ssm` entries ECS resolves at start.
 */
import { vi } from "vitest";
import { sealSstLinks, sstLinkType } from "../support/sst.ts";
import { type Created, find, installStandIns, loadSstConfig, removeStandIns } from "./sst-standins.ts";

export type EntryName = "api" | "console" | "worker" | "dispatch" | "deliver";

export interface DeployedStack {
  /** Each Lambda function's `sst.aws.Function` arguments. */
  functions: Record<EntryName, { link: string[]; environment: Record<string, string> }>;
  /** The task's `sst.aws.Task` arguments. */
  task: { link: string[]; environment: Record<string, string>; ssm: Record<string, string> };
  /** The WAL archiver's `sst.aws.Service` arguments (a container like the task's). */
  archiver: { link: string[]; environment: Record<string, string>; ssm: Record<string, string>; entrypoint: string[] };
  created: Created[];
}

/** Evaluates sst.config.ts's `run()` with the stand-ins and returns what each entry point is given. */
export async function deployedStack(repoRoot: string, deployEnv: Record<string, string> = {}): Promise<DeployedStack> {
  vi.resetModules();
  vi.stubEnv("CAPYDB_PG_LAYER_ARN", "arn:aws:lambda:us-east-1:123456789012:layer:pg:1");
  for (const [k, v] of Object.entries(deployEnv)) vi.stubEnv(k, v);
  const created = installStandIns({ root: repoRoot });
  try {
    await (await loadSstConfig(repoRoot)).run();
  } finally {
    removeStandIns();
    vi.unstubAllEnvs();
  }
  const names = (args: any): string[] => (args.link ?? []).map((r: any) => r.$name);
  const fn = (args: any) => ({ link: names(args), environment: { ...(args.environment ?? {}) } });
  const taskArgs = find(created, "sst.aws.Task", "LargeJobs").args;
  const archiverArgs = find(created, "sst.aws.Service", "Archiver").args;
  return {
    functions: {
      api: fn(find(created, "sst.aws.ApiGatewayV2", "Api").calls.find((c) => c.args[0] === "$default")!.args[1]),
      console: fn(find(created, "sst.aws.Function", "Console").args),
      worker: fn(find(created, "sst.aws.Queue", "Jobs").calls[0]!.args[0]),
      dispatch: fn(find(created, "sst.aws.CronV2", "Dispatch").args.function),
      deliver: fn(find(created, "sst.aws.Queue", "Deliveries").calls[0]!.args[0]),
    },
    task: { link: names(taskArgs), environment: { ...(taskArgs.environment ?? {}) }, ssm: { ...(taskArgs.ssm ?? {}) } },
    archiver: {
      link: names(archiverArgs),
      environment: { ...(archiverArgs.environment ?? {}) },
      ssm: { ...(archiverArgs.ssm ?? {}) },
      entrypoint: [...archiverArgs.entrypoint],
    },
    created,
  };
}

/**
 * The local stack's value of every output the stand-ins render as `<Resource.property>`: the
 * resources of this test file, the secrets' values, and RunTask parameters shaped as AWS gives them.
 */
export function localOutputs(local: {
  table: string;
  queueUrl: string;
  dlqUrl: string;
  bucket: string;
  deliveryQueueUrl: string;
  secretKey: string;
}): Record<string, unknown> {
  return {
    "<Table.name>": local.table,
    "<Jobs.url>": local.queueUrl,
    "<JobsDlq.url>": local.dlqUrl,
    "<Backups.name>": local.bucket,
    "<Deliveries.url>": local.deliveryQueueUrl,
    "<ClusterSecretKey.value>": local.secretKey,
    "<ClerkJwksUrl.value>": "",
    "<ClerkIssuer.value>": "",
    "<ClerkAuthorizedParties.value>": "",
    "<LargeJobs.cluster>": "arn:aws:ecs:us-east-1:123456789012:cluster/capydb-test",
    "<LargeJobs.taskDefinition>": "arn:aws:ecs:us-east-1:123456789012:task-definition/capydb-test-LargeJobs:1",
    "<LargeJobs.subnets>": ["subnet-0a"],
    "<LargeJobs.securityGroups>": ["sg-0a"],
    "<LargeJobs.assignPublicIp>": false,
    "<LargeJobs.containers>": ["LargeJobs"],
    "<ClusterSecretKeyParameter.arn>": "arn:aws:ssm:us-east-1:123456789012:parameter/capydb-backups/test/ClusterSecretKey",
  };
}

/** A rendered value with its outputs filled in (inside JSON, an output becomes its JSON value). */
export function resolveOutputs(value: string, outputs: Record<string, unknown>): string {
  return value
    .replace(/"(<[A-Za-z.]+>)"/g, (m, ref: string) => (ref in outputs ? JSON.stringify(outputs[ref]) : m))
    .replace(/<[A-Za-z.]+>/g, (ref) => {
      if (!(ref in outputs)) throw new Error(`no local value for ${ref}`);
      return String(outputs[ref]);
    });
}

/** A link's properties as SST records them (`Link.build`: the linkable's properties plus its type). */
export function linkProperties(name: string, outputs: Record<string, unknown>): Record<string, unknown> {
  const prop = { Table: "name", Backups: "name", Jobs: "url", JobsDlq: "url", Deliveries: "url" }[name];
  const type = sstLinkType[name as keyof typeof sstLinkType] ?? sstLinkType.secret;
  const key = prop ?? "value";
  const ref = `<${name}.${key}>`;
  if (!(ref in outputs)) throw new Error(`no local value for link ${name}`);
  return { [key]: outputs[ref], type };
}

/**
 * A Lambda function's environment as deployed: SST's three variables (its links sealed into
 * `dir/resource.enc`), the function's own `environment`, and what the Lambda runtime sets.
 */
export function lambdaEnvironment(
  name: EntryName,
  stack: DeployedStack,
  outputs: Record<string, unknown>,
  dir: string,
  runtime: Record<string, string>,
): Record<string, string> {
  const fn = stack.functions[name];
  const links = Object.fromEntries(fn.link.map((l) => [l, linkProperties(l, outputs)]));
  const own = Object.fromEntries(Object.entries(fn.environment).map(([k, v]) => [k, resolveOutputs(String(v), outputs)]));
  return {
    ...runtime,
    AWS_LAMBDA_FUNCTION_NAME: `capydb-backups-test-${name}`,
    AWS_LAMBDA_LOG_STREAM_NAME: `2026/12/06/[$LATEST]${name}0000000000000000`,
    LAMBDA_TASK_ROOT: dir,
    ...own,
    ...sealSstLinks(dir, links),
  };
}

/**
 * The task's (or the archiver service's) container environment as ECS starts it: `environment`, one `SST_RESOURCE_<Link>`
 * per link, `SST_RESOURCE_App`, and each `ssm` entry resolved to the secret's value.
 */
export function taskEnvironment(
  stack: DeployedStack,
  outputs: Record<string, unknown>,
  secretValues: Record<string, string>,
  runtime: Record<string, string>,
  container: "task" | "archiver" = "task",
): Record<string, string> {
  const env: Record<string, string> = { ...runtime };
  const args = stack[container];
  for (const [k, v] of Object.entries(args.environment)) env[k] = resolveOutputs(String(v), outputs);
  for (const l of args.link) env[`SST_RESOURCE_${l}`] = JSON.stringify(linkProperties(l, outputs));
  env.SST_RESOURCE_App = JSON.stringify({ name: "capydb-backups", stage: "test" });
  for (const [k, arn] of Object.entries(args.ssm)) {
    const value = secretValues[resolveOutputs(String(arn), outputs)];
    if (value === undefined) throw new Error(`no secret value for ${k} (${arn})`);
    env[k] = value;
  }
  return env;
}
