import { secrets } from "./secrets.ts";
import { type FunctionSettings, type Grant, type GrantTarget, type LinkName, architecture, grants, runtime, verifyClusterVariable } from "./settings.ts";
import { bucket, deliveries, jobs, jobsDlq, table } from "./storage.ts";

/** Every linkable resource by the name core/config.ts reads it under (`SST_RESOURCE_<Name>`). */
export const resources: Record<LinkName, unknown> = {
  Table: table,
  Jobs: jobs,
  JobsDlq: jobsDlq,
  Backups: bucket,
  Deliveries: deliveries,
  ...secrets,
};

/**
 * The verification cluster's id, from the deploy's own environment (CAPYDB_VERIFY_CLUSTER_ID: a
 * cluster registered with capydb-admin, so not known before the first deploy). Without it the
 * worker and the task refuse to start (they require one), and the deploy says so.
 */
export function verifyClusterEnvironment(): Record<string, string> {
  const id = process.env[verifyClusterVariable];
  if (!id) {
    console.warn(
      `${verifyClusterVariable} is not set: the worker and the task will not start until it names a verification cluster ` +
        "(register one with capydb-admin cluster add, then deploy again with it set; docs/deploy.md)",
    );
    return {};
  }
  return { [verifyClusterVariable]: id };
}

/** The ARNs a grant's target covers: the table with its indexes, a queue, the bucket's objects. */
function targetArns(on: GrantTarget): $util.Input<string>[] {
  switch (on) {
    case "table":
      return [table.arn, $interpolate`${table.arn}/index/*`];
    case "jobs":
      return [jobs.arn];
    case "deliveries":
      return [deliveries.arn];
    case "bucketObjects":
      return [$interpolate`${bucket.arn}/*`];
  }
}

/** An IAM statement, in the shape of SST's `permissions`. */
export interface Statement {
  actions: string[];
  resources: $util.Input<string>[];
  conditions?: { test: string; variable: string; values: $util.Input<string>[] }[];
}

/** The statements of a list of grants (infra/settings.ts), one per grant. */
export function grantStatements(list: readonly Grant[]): Statement[] {
  return list.map((g) => ({ actions: [...g.actions], resources: targetArns(g.on) }));
}

/**
 * A role's whole inline policy: exactly these statements. Given as the role's `inlinePolicies`
 * through `transform`, it replaces the policy SST would build, which adds every link's rights
 * (`dynamodb:*` with DeleteTable, `sqs:*`, `s3:*` with DeleteBucket) to the `permissions`.
 */
export function inlinePolicy(statements: Statement[]) {
  return [
    {
      name: "inline",
      policy: $jsonStringify({
        Version: "2012-10-17",
        Statement: statements.map((st) => ({
          Effect: "Allow",
          Action: st.actions,
          Resource: st.resources,
          ...(st.conditions ? { Condition: Object.fromEntries(st.conditions.map((c) => [c.test, { [c.variable]: c.values }])) } : {}),
        })),
      }),
    },
  ];
}

/**
 * The `sst.aws.Function` arguments of one entry point, from its settings: SST bundles
 * `functions/<entry>.ts` with esbuild (ESM, minified, AWS SDK bundled), which
 * scripts/build-functions.ts mirrors so the tests measure what a deploy ships. Its role's policy
 * is exactly its grants plus `extra.permissions` (nothing from the links).
 */
export function functionArgs(
  settings: FunctionSettings,
  extra: {
    environment?: Record<string, $util.Input<string>>;
    layers?: $util.Input<string>[];
    permissions?: Statement[];
    vpc?: sst.aws.Vpc;
  } = {},
): sst.aws.FunctionArgs {
  const statements = [...grantStatements(grants[settings.entry]), ...(extra.permissions ?? [])];
  return {
    handler: `functions/${settings.entry}.handler`,
    runtime,
    architecture,
    timeout: settings.timeout,
    memory: settings.memory,
    link: settings.link.map((name) => resources[name]),
    environment: { ...settings.environment, ...extra.environment },
    ...(extra.layers ? { layers: extra.layers } : {}),
    ...(extra.vpc ? { vpc: extra.vpc } : {}),
    ...(settings.reservedConcurrency ? { concurrency: { reserved: settings.reservedConcurrency } } : {}),
    transform: { role: { inlinePolicies: statements.length > 0 ? inlinePolicy(statements) : [] } },
    // Same plugins as scripts/build-functions.ts (path relative to sst.config.ts).
    nodejs: { format: "esm", minify: true, plugins: "scripts/esbuild-plugins.mjs" },
  };
}
