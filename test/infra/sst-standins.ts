/**
 * Recording stand-ins for the globals SST gives sst.config.ts (`$config`, `$app`, `sst.*`,
 * `aws.*`, `$util`, `$cli`): enough to evaluate the real `run()` offline and read back every
 * component it created, with the arguments it passed. Outputs are strings like `<Backups.name>`
 * so a test can see which resource an argument points at.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";

export interface Created {
  /** e.g. "sst.aws.Queue", "aws.s3.BucketLifecycleConfiguration". */
  type: string;
  name: string;
  args: any;
  /** Calls made on the component after construction (`subscribe`, `route`). */
  calls: { method: string; args: any[] }[];
}

export const ref = (name: string, prop: string) => `<${name}.${prop}>`;

export function installStandIns(opts: { root: string; stage?: string }): Created[] {
  const created: Created[] = [];

  function component(type: string, props: string[], methods: string[] = [], nodes: Record<string, string[]> = {}) {
    return class {
      readonly $name: string;
      readonly $record: Created;
      constructor(name: string, args?: unknown) {
        this.$name = name;
        this.$record = { type, name, args, calls: [] };
        created.push(this.$record);
        for (const p of props) Object.defineProperty(this, p, { get: () => ref(name, p) });
        // Sub-resources (`task.nodes.taskRole.arn` -> "<LargeJobs.nodes.taskRole.arn>").
        (this as any).nodes = Object.fromEntries(
          Object.entries(nodes).map(([node, nprops]) => [node, Object.fromEntries(nprops.map((p) => [p, ref(`${name}.nodes.${node}`, p)]))]),
        );
        if (type === "sst.aws.Vpc") {
          // An Output of the route tables, as SST's Vpc gives it.
          (this as any).nodes.privateRouteTables = {
            apply: (f: (t: { id: string }[]) => unknown) => f([1, 2].map((i) => ({ id: ref(`${name}.privateRouteTable${i}`, "id") }))),
          };
        }
        for (const m of methods) {
          (this as any)[m] = (...margs: any[]) => {
            this.$record.calls.push({ method: m, args: margs });
            const n = this.$record.calls.length;
            return { $subscriberOf: name, method: m, nodes: { function: { name: ref(`${name}.${m}${n}.function`, "name") } } };
          };
        }
      }
    };
  }

  const g = globalThis as any;
  g.$config = (config: unknown) => config;
  g.$app = { name: "capydb-backups", stage: opts.stage ?? "test" };
  g.$dev = false;
  g.$cli = { paths: { root: opts.root } };
  g.$interpolate = (strings: TemplateStringsArray, ...values: unknown[]) => String.raw({ raw: strings }, ...values);
  g.$jsonStringify = (value: unknown) => JSON.stringify(value);
  g.$util = {
    asset: {
      FileArchive: class {
        constructor(readonly path: string) {}
      },
    },
  };
  g.sst = {
    Secret: component("sst.Secret", ["name", "value"]),
    aws: {
      Dynamo: component("sst.aws.Dynamo", ["name", "arn"]),
      Queue: component("sst.aws.Queue", ["url", "arn"], ["subscribe"], { queue: ["name"] }),
      Bucket: component("sst.aws.Bucket", ["name", "arn"]),
      ApiGatewayV2: component("sst.aws.ApiGatewayV2", ["url"], ["route"]),
      Function: component("sst.aws.Function", ["arn", "name"], [], { function: ["name"] }),
      CronV2: component("sst.aws.CronV2", [], [], { function: ["name"] }),
      Vpc: component("sst.aws.Vpc", ["id", "publicSubnets", "securityGroups"]),
      Cluster: component("sst.aws.Cluster", ["id"]),
      Service: component("sst.aws.Service", ["service"], [], { taskRole: ["arn"], executionRole: ["arn"] }),
      Task: component("sst.aws.Task", ["cluster", "taskDefinition", "subnets", "securityGroups", "assignPublicIp", "containers"], [], {
        taskRole: ["arn"],
        executionRole: ["arn"],
      }),
    },
  };
  g.aws = {
    lambda: { LayerVersion: component("aws.lambda.LayerVersion", ["arn"]) },
    ssm: { Parameter: component("aws.ssm.Parameter", ["arn", "name"]) },
    ec2: { Eip: component("aws.ec2.Eip", ["allocationId", "publicIp"]), VpcEndpoint: component("aws.ec2.VpcEndpoint", ["id"]) },
    sns: { Topic: component("aws.sns.Topic", ["arn"]), TopicSubscription: component("aws.sns.TopicSubscription", []) },
    cloudwatch: { MetricAlarm: component("aws.cloudwatch.MetricAlarm", ["arn"]), Dashboard: component("aws.cloudwatch.Dashboard", ["dashboardName"]) },
    getRegionOutput: () => ({ name: "us-east-1" }),
    s3: {
      BucketLifecycleConfiguration: component("aws.s3.BucketLifecycleConfiguration", []),
      BucketServerSideEncryptionConfiguration: component("aws.s3.BucketServerSideEncryptionConfiguration", []),
    },
  };
  return created;
}

export function removeStandIns(): void {
  for (const k of ["$config", "$app", "$dev", "$cli", "$util", "$interpolate", "$jsonStringify", "sst", "aws"]) {
    delete (globalThis as any)[k];
  }
}

/** The repository's sst.config.ts, imported through a computed path so the app's tsc (which
 * knows nothing of SST's globals) does not follow it; tsconfig.infra.json typechecks it. */
export async function loadSstConfig(repoRoot: string): Promise<{
  app: (input: { stage: string }) => any;
  run: () => Promise<Record<string, unknown>>;
}> {
  const url = pathToFileURL(path.join(repoRoot, "sst.config.ts")).href;
  const mod = await import(/* @vite-ignore */ url);
  return mod.default;
}

/** The one component of a type and name, failing loudly when absent. */
export function find(created: Created[], type: string, name?: string): Created {
  const hit = created.filter((c) => c.type === type && (name === undefined || c.name === name));
  if (hit.length !== 1) {
    throw new Error(`expected one ${type}${name ? ` "${name}"` : ""}, found ${hit.length}: ` + JSON.stringify(created.map((c) => `${c.type} ${c.name}`)));
  }
  return hit[0]!;
}
