import { z } from "./zod.ts";
import { readSstLinks, type SstLinks } from "./sst-links.ts";

/**
 * What RunTask needs to know about the task (the properties `sst.aws.Task` links), handed to the
 * worker by infra/worker.ts as CAPYDB_TASK (JSON) rather than as a link: a link would grant ecs:*
 * on the cluster's tasks; the worker gets ecs:RunTask on this task definition and iam:PassRole of
 * its two roles, nothing more.
 */
export const taskResourceSchema = z.object({
  cluster: z.string().min(1),
  taskDefinition: z.string().min(1),
  subnets: z.array(z.string()).min(1),
  securityGroups: z.array(z.string()),
  assignPublicIp: z.boolean(),
  containers: z.array(z.string()).min(1),
});
export type TaskResource = z.infer<typeof taskResourceSchema>;

/**
 * Service configuration, parsed once at each entry point (Lambda handler module, local stack,
 * capydb-admin). Deployed, the resource names come from SST's links: sealed in `resource.enc`
 * beside a Lambda function's code, `SST_RESOURCE_<Name>` variables in the Fargate task
 * (core/sst-links.ts reads both). Locally they come from plain environment variables set by the
 * local stack or read from `.capydb/local.json`. A plain variable is the fallback for a link.
 */
/**
 * Concurrent jobs per cluster by default (CAPYDB_CLUSTER_JOB_CAP): enough to keep a night of
 * scheduled backups moving, few enough that they do not take a customer's cluster's I/O and
 * connections, nor the worker's whole concurrency for one cluster.
 */
export const DEFAULT_CLUSTER_JOB_CAP = 4;

export const configSchema = z.object({
  region: z.string().min(1),
  /** Endpoint override for every AWS client (local stand-ins); absent on AWS. */
  endpoint: z.url().optional(),
  table: z.string().min(1),
  queueUrl: z.string().regex(/^https?:\/\/\S+$/, "must be an http(s) queue URL"),
  dlqUrl: z
    .string()
    .regex(/^https?:\/\/\S+$/, "must be an http(s) queue URL")
    .optional(),
  /** The webhook deliveries queue (SST link `Deliveries`); absent where nothing sends deliveries. */
  deliveryQueueUrl: z
    .string()
    .regex(/^https?:\/\/\S+$/, "must be an http(s) queue URL")
    .optional(),
  /** Local stack only: webhook receivers on loopback addresses, over http too. Deploys never set it. */
  webhooksAllowLoopbackHttp: z.boolean().default(false),
  bucket: z.string().min(1),
  /** 32-byte key (base64) that encrypts stored cluster passwords. */
  secretKey: z.string().refine((s) => Buffer.from(s, "base64").length === 32, "must be 32 bytes, base64-encoded"),
  /** Colon-separated directories holding PostgreSQL installations (`<dir>/<major>/bin/pg_dump`). */
  pgBinDirs: z.array(z.string()).default([]),
  /** A cluster (by id, from the store) to restore verification copies on, instead of the project's own. */
  verifyClusterId: z
    .string()
    .regex(/^cls_[0-9a-z]{26}$/, "must be a cluster id (cls_...)")
    .optional(),
  /** Deployed: verification never runs on a customer's server, so a verification cluster is required. */
  requireVerifyCluster: z.boolean().default(false),
  /** How long an export's dump is kept for download before the dispatcher deletes it. */
  exportRetentionDays: z
    .string()
    .regex(/^\d+$/, "must be a whole number of days")
    .default("7")
    .transform(Number)
    .pipe(z.number().int().min(1, "must be 1 to 365 days").max(365, "must be 1 to 365 days")),
  /** Jobs that move more bytes than this run as a task (Fargate; locally a child process), not in the worker. */
  taskThresholdBytes: z.number({ error: "must be a size such as 5 GB, 500 MB or a number of bytes" }).int().nonnegative(),
  /** The Fargate task the worker launches (infra/worker.ts); absent locally, where tasks are child processes. */
  task: taskResourceSchema.optional(),
  /** Identity recorded as a job's `claimed_by`. */
  workerId: z.string().min(1),
  logLevel: z.enum(["DEBUG", "INFO", "WARN", "ERROR"]).default("INFO"),
  /** `HH:MM` UTC of each archived cluster's daily base backup. */
  baseBackupAt: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, "must be a UTC time HH:MM such as 04:00")
    .default("04:00"),
  /** Where the WAL archiver spools what pg_receivewal writes before it ships (kept across restarts). */
  walSpoolDir: z.string().min(1).default("/tmp/capydb-wal"),
  /** Jobs that run at once on one cluster; the rest wait their turn (0: no cap). */
  clusterJobCap: z.coerce
    .number({ error: "must be a whole number of jobs (0: no cap)" })
    .int("must be a whole number of jobs (0: no cap)")
    .min(0, "must be 0 (no cap) or more")
    .max(1000, "must be at most 1000")
    .default(DEFAULT_CLUSTER_JOB_CAP),
  /** Live preview databases a project may have at once. */
  previewLimit: z.coerce.number().int().min(1).max(100).default(5),
  clerk: z
    .object({
      jwksUrl: z.url(),
      issuer: z.string().min(1),
      authorizedParties: z.array(z.string()).default([]),
    })
    .optional(),
});
export type Config = z.infer<typeof configSchema>;

/** Name of each environment variable, for error messages that name the setting. */
const envNames: Record<string, string> = {
  region: "AWS_REGION",
  endpoint: "CAPYDB_AWS_ENDPOINT",
  table: "CAPYDB_TABLE",
  queueUrl: "CAPYDB_QUEUE_URL",
  dlqUrl: "CAPYDB_DLQ_URL",
  deliveryQueueUrl: "CAPYDB_DELIVERY_QUEUE_URL",
  webhooksAllowLoopbackHttp: "CAPYDB_WEBHOOKS_ALLOW_LOOPBACK_HTTP",
  bucket: "CAPYDB_BUCKET",
  secretKey: "CAPYDB_SECRET_KEY",
  pgBinDirs: "CAPYDB_PG_BIN_DIRS",
  workerId: "CAPYDB_WORKER_ID",
  verifyClusterId: "CAPYDB_VERIFY_CLUSTER_ID",
  requireVerifyCluster: "CAPYDB_REQUIRE_VERIFY_CLUSTER",
  exportRetentionDays: "CAPYDB_EXPORT_RETENTION_DAYS",
  taskThresholdBytes: "CAPYDB_TASK_THRESHOLD",
  task: "CAPYDB_TASK",
  logLevel: "LOG_LEVEL",
  previewLimit: "CAPYDB_PREVIEW_LIMIT",
  baseBackupAt: "CAPYDB_BASE_BACKUP_AT",
  walSpoolDir: "CAPYDB_WAL_SPOOL_DIR",
  clusterJobCap: "CAPYDB_CLUSTER_JOB_CAP",
  clerk: "CLERK_JWKS_URL",
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

function jsonSetting(env: Env, name: string): unknown {
  const raw = str(env[name]);
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new ConfigError(`invalid setting ${name}: not JSON`);
  }
}

/** Jobs that move more than this run as a task (core/tasks), not in the worker. */
export const DEFAULT_TASK_THRESHOLD_BYTES = 5 * 1024 ** 3;

/**
 * The threshold setting (CAPYDB_TASK_THRESHOLD): bytes, or a number with a unit (`5 GB`, `1MB`,
 * `512 MiB`). Units are binary (1 GB = 1024^3 bytes), as `pg_size_pretty` shows sizes.
 */
export function parseSize(raw: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$/i.exec(raw);
  if (!m) return undefined;
  const unit = (m[2] ?? "B").toUpperCase().replace("IB", "B");
  const pow = { B: 0, KB: 1, MB: 2, GB: 3, TB: 4 }[unit];
  if (pow === undefined) return undefined;
  return Math.round(Number(m[1]) * 1024 ** pow);
}

function taskThreshold(env: Env): number {
  const raw = str(env.CAPYDB_TASK_THRESHOLD);
  if (raw === undefined) return DEFAULT_TASK_THRESHOLD_BYTES;
  const bytes = parseSize(raw);
  if (bytes === undefined) throw new ConfigError("invalid setting CAPYDB_TASK_THRESHOLD: must be a size such as 5 GB, 500 MB or a number of bytes");
  return bytes;
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/**
 * Parses the configuration from the environment. Throws a ConfigError whose message is one line
 * naming the first missing or malformed setting.
 */
export function loadConfig(env: Env = process.env): Config {
  let links: SstLinks;
  try {
    links = readSstLinks(env);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const table = links.Table;
  const queue = links.Jobs;
  const dlq = links.JobsDlq;
  const deliveries = links.Deliveries;
  const bucket = links.Backups;
  const secret = links.ClusterSecretKey;
  const clerkJwks = str(links.ClerkJwksUrl?.value) ?? str(env.CLERK_JWKS_URL);
  const clerkIssuer = str(links.ClerkIssuer?.value) ?? str(env.CLERK_ISSUER);
  const clerkParties = str(links.ClerkAuthorizedParties?.value) ?? str(env.CLERK_AUTHORIZED_PARTIES);

  const raw = {
    region: str(env.AWS_REGION) ?? str(env.AWS_DEFAULT_REGION) ?? "us-east-1",
    endpoint: str(env.CAPYDB_AWS_ENDPOINT),
    table: str(table?.name) ?? str(env.CAPYDB_TABLE),
    queueUrl: str(queue?.url) ?? str(env.CAPYDB_QUEUE_URL),
    dlqUrl: str(dlq?.url) ?? str(env.CAPYDB_DLQ_URL),
    deliveryQueueUrl: str(deliveries?.url) ?? str(env.CAPYDB_DELIVERY_QUEUE_URL),
    webhooksAllowLoopbackHttp: ((v) => (v === undefined ? undefined : v === "1" || v === "true" ? true : v === "0" || v === "false" ? false : v))(
      str(env.CAPYDB_WEBHOOKS_ALLOW_LOOPBACK_HTTP),
    ),
    bucket: str(bucket?.name) ?? str(env.CAPYDB_BUCKET),
    secretKey: str(secret?.value) ?? str(env.CAPYDB_SECRET_KEY),
    pgBinDirs: (str(env.CAPYDB_PG_BIN_DIRS) ?? "").split(":").filter(Boolean),
    verifyClusterId: str(env.CAPYDB_VERIFY_CLUSTER_ID),
    requireVerifyCluster: str(env.CAPYDB_REQUIRE_VERIFY_CLUSTER) === "1",
    exportRetentionDays: str(env.CAPYDB_EXPORT_RETENTION_DAYS),
    taskThresholdBytes: taskThreshold(env),
    task: jsonSetting(env, "CAPYDB_TASK"),
    workerId: str(env.CAPYDB_WORKER_ID) ?? str(env.AWS_LAMBDA_LOG_STREAM_NAME) ?? `worker-${process.pid}`,
    logLevel: str(env.LOG_LEVEL)?.toUpperCase(),
    previewLimit: str(env.CAPYDB_PREVIEW_LIMIT),
    baseBackupAt: str(env.CAPYDB_BASE_BACKUP_AT),
    walSpoolDir: str(env.CAPYDB_WAL_SPOOL_DIR),
    clusterJobCap: str(env.CAPYDB_CLUSTER_JOB_CAP),
    clerk:
      clerkJwks || clerkIssuer
        ? {
            jwksUrl: clerkJwks,
            issuer: clerkIssuer,
            authorizedParties: (clerkParties ?? "")
              .split(",")
              .map((s) => s.trim())
              .filter(Boolean),
          }
        : undefined,
  };
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? "");
    const name = envNames[field] ?? field;
    const missing = issue.code === "invalid_type" && issue.input === undefined;
    throw new ConfigError(missing ? `missing setting ${name}` : `invalid setting ${name}: ${issue.message}`);
  }
  if (parsed.data.requireVerifyCluster && !parsed.data.verifyClusterId) {
    throw new ConfigError(
      "missing setting CAPYDB_VERIFY_CLUSTER_ID: this deployment restores verification copies on a verification cluster, never on a customer's server (docs/deploy.md)",
    );
  }
  return parsed.data;
}
