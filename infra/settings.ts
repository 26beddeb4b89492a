/**
 * The deployment's decisions as plain data: no SST or Pulumi globals here, so the offline tests
 * (test/infra) import this file directly and the SST code in infra/*.ts builds its components
 * from it. Change a number here and both the deployed stack and the tests that guard it follow.
 */
import { tableDefinition } from "../core/db/table.ts";

type DurationUnit = "second" | "seconds" | "minute" | "minutes" | "hour" | "hours" | "day" | "days";
export type Duration = `${number} ${DurationUnit}`;
/** A Lambda timeout: at most 15 minutes, so SST types it without hours or days. */
export type DurationMinutes = `${number} ${"second" | "seconds" | "minute" | "minutes"}`;
export type Size = `${number} ${"MB" | "GB"}`;

/** Seconds in an SST duration string ("15 minutes" -> 900). */
export function toSeconds(duration: Duration): number {
  const [count, unit] = duration.split(" ") as [string, DurationUnit];
  const n = Number(count);
  const per: Record<string, number> = { second: 1, minute: 60, hour: 3600, day: 86400 };
  return n * per[unit.replace(/s$/, "")]!;
}

// ---------------------------------------------------------------------------------------------
// DynamoDB: derived from the one table definition in core/db/table.ts (never restated here).

type Gsi = keyof typeof tableDefinition.globalIndexes;

/** `sst.aws.Dynamo` arguments: every key attribute is a string, indexes and TTL as defined. */
export const tableArgs = {
  fields: Object.fromEntries(
    [tableDefinition.partitionKey, tableDefinition.sortKey, ...Object.values(tableDefinition.globalIndexes).flatMap((i) => [i.partitionKey, i.sortKey])].map(
      (name) => [name, "string" as const],
    ),
  ) as Record<string, "string">,
  primaryIndex: { hashKey: tableDefinition.partitionKey, rangeKey: tableDefinition.sortKey },
  globalIndexes: Object.fromEntries(
    Object.entries(tableDefinition.globalIndexes).map(([name, index]) => [
      name,
      { hashKey: index.partitionKey, rangeKey: index.sortKey, projection: "all" as const },
    ]),
  ) as Record<Gsi, { hashKey: string; rangeKey: string; projection: "all" }>,
  ttl: tableDefinition.ttlAttribute,
};

// ---------------------------------------------------------------------------------------------
// Functions.

/**
 * arm64 (Graviton) everywhere. The worker's architecture is the one that matters: it must match
 * the PostgreSQL binaries of the pg layer, which scripts/build-pg-layer.sh builds for this same
 * architecture (its default ARCH). arm64 Lambda costs ~20% less per GB-second than x86_64, and
 * the worker is the function that runs long (pg_dump + verify-restore). The API and dispatcher
 * ship no native code, so they follow for uniformity and the same price cut.
 */
export const architecture = "arm64" as const;
export const runtime = "nodejs24.x" as const;

/** The pg layer's mount point: Lambda extracts layers under /opt; the layer holds `pgsql/<major>/bin`. */
export const pgBinDir = "/opt/pgsql";
/** The PostgreSQL majors the layer ships (the service dumps clusters of these majors). */
export const pgMajors = [16, 17, 18] as const;
/** Where scripts/build-pg-layer.sh leaves the layer's content (a directory SST zips on deploy). */
export const pgLayerDir = "dist/pg-layer";
/** The layer's zip (scripts/zip-dir.ts: Unix modes kept), what the deploy uploads. */
export const pgLayerZip = "dist/pg-layer.zip";
/** Written beside it by the script: `{ "arch": "arm64", "majors": [16, 17, 18] }`. */
export const pgLayerManifest = "dist/pg-layer.json";

export interface FunctionSettings {
  /** Entry point under functions/ (export `handler`). */
  entry: "api" | "worker" | "dispatch" | "deliver" | "console";
  timeout: DurationMinutes;
  memory: Size;
  /** Ephemeral /tmp. */
  storage?: Size;
  environment?: Record<string, string>;
  /**
   * Link names (see LinkName) this function reads: exactly what it uses. A link only delivers the
   * names (resource.enc); the IAM rights are `grants` below, never the link's own (`dynamodb:*`,
   * `sqs:*`, `s3:*`), which infra/resources.ts replaces with them.
   */
  link: readonly LinkName[];
  /** Reserved concurrency: a share of the account's concurrency no other function can take. */
  reservedConcurrency?: number;
}

/** Names of the linked resources, as core/config.ts reads them (`SST_RESOURCE_<Name>`). */
export type LinkName = "Table" | "Jobs" | "JobsDlq" | "Backups" | "Deliveries" | "ClusterSecretKey" | "ClerkJwksUrl" | "ClerkIssuer" | "ClerkAuthorizedParties";

export const functions = {
  /**
   * API Gateway's HTTP API gives up on an integration after 30 s, so a longer Lambda timeout would
   * only bill for answers nobody receives. 1 GB buys a faster cold start (CPU scales with memory).
   * core/config.ts currently requires the bucket and the cluster secret key at every entry point:
   * the API gets the bucket's name as a plain variable and the secret link. Its only S3 right is
   * s3:GetObject on the bucket's objects, to sign download URLs (a presigned URL carries the
   * signer's rights); it never reads, writes, lists or deletes an object itself.
   */
  api: {
    entry: "api",
    timeout: "29 seconds",
    memory: "1024 MB",
    link: ["Table", "Jobs", "Deliveries", "ClusterSecretKey", "ClerkJwksUrl", "ClerkIssuer", "ClerkAuthorizedParties"],
    /**
     * The worker's event source is capped (workerSubscription), so a midnight of schedules cannot
     * take the account's concurrency (1,000 by default) from the API: 100 of it stay the API's.
     */
    reservedConcurrency: 100,
  },
  /**
   * The worker runs pg_dump and streams it through SHA-256 into an S3 multipart upload, then
   * pg_restore for the verification: two processes busy at once, so 4 GB (Lambda gives ~2.3 vCPUs
   * at this size; 1 vCPU per 1769 MB) and the full 15 minutes Lambda allows. Memory also bounds
   * the upload's in-flight parts. Nothing is staged on /tmp (the dump streams), so the default
   * 512 MB of ephemeral storage stays.
   */
  worker: {
    entry: "worker",
    timeout: "15 minutes",
    memory: "4096 MB",
    environment: { CAPYDB_PG_BIN_DIRS: pgBinDir, CAPYDB_REQUIRE_VERIFY_CLUSTER: "1" },
    link: ["Table", "Jobs", "Backups", "ClusterSecretKey"],
  },
  /**
   * One tick a minute: it must be done well before the next one (double ticks are harmless, but
   * pointless). It queries due schedules, enqueues jobs, re-enqueues lapsed leases, and deletes
   * expired artifacts from the bucket (retention), so it is linked to the bucket too.
   */
  dispatch: {
    entry: "dispatch",
    timeout: "50 seconds",
    memory: "512 MB",
    // Deliveries: the tick also relays the webhook outbox and re-sends lost deliveries.
    link: ["Table", "Jobs", "Backups", "Deliveries", "ClusterSecretKey"],
  },
  /**
   * Webhook deliveries: one signed POST per message, 10 s at most each, the batch's messages in
   * parallel, so 30 s covers a batch with room for DynamoDB. Linked to the table and its own
   * queue (retries are delayed messages), plus the key that opens the sealed endpoint secrets;
   * core/config.ts's required jobs queue and bucket come as plain names (no permission).
   */
  deliver: {
    entry: "deliver",
    timeout: "30 seconds",
    memory: "512 MB",
    link: ["Table", "Deliveries", "ClusterSecretKey"],
  },
  /**
   * The browser console's pages (`/console`, functions/console.ts): server-rendered HTML and one
   * script, no data and no credential (the browser calls the API with the user's key). Linked to
   * the two Clerk settings only, to know whether to offer Clerk sign-in. A page renders in a few
   * milliseconds; 512 MB keeps the cold start short (CPU scales with memory).
   */
  console: {
    entry: "console",
    timeout: "10 seconds",
    memory: "512 MB",
    link: ["ClerkJwksUrl", "ClerkIssuer"],
  },
} as const satisfies Record<string, FunctionSettings>;

/** Functions whose config needs the bucket's name without touching S3 (see core/config.ts). */
export const bucketNameOnly = ["api", "deliver"] as const;

// ---------------------------------------------------------------------------------------------
// IAM: exactly the actions each entry point's code calls (test/infra/iam.test.ts derives them
// from the source files in each bundle and compares), on exactly its resources.

/** What a grant applies to: the table and its indexes, a queue, the bucket's objects. */
export type GrantTarget = "table" | "jobs" | "deliveries" | "bucketObjects";
export interface Grant {
  on: GrantTarget;
  actions: readonly string[];
  /** Not called by the code: what Lambda's SQS poller needs to feed the function. */
  trigger?: true;
}

/** DynamoDB through core/db/store.ts: Get, Put, Update, Delete, Query, and TransactWrite (its items' actions plus ConditionCheckItem). */
const tableRw = [
  "dynamodb:ConditionCheckItem",
  "dynamodb:DeleteItem",
  "dynamodb:GetItem",
  "dynamodb:PutItem",
  "dynamodb:Query",
  "dynamodb:UpdateItem",
] as const;
/** What Lambda's event source mapping calls on the queue with the function's role. */
const sqsTrigger = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"] as const;
/** Dump, verify and clean up: multipart upload (s3:PutObject), CopyObject, GetObject, DeleteObject, AbortMultipartUpload. */
const artifactRw = ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"] as const;

export const grants = {
  /** Health reads the table's description and the queue's attributes; signing a download URL needs s3:GetObject. */
  api: [
    { on: "table", actions: [...tableRw, "dynamodb:DescribeTable"] },
    { on: "jobs", actions: ["sqs:GetQueueAttributes", "sqs:SendMessage"] },
    { on: "deliveries", actions: ["sqs:SendMessage"] },
    { on: "bucketObjects", actions: ["s3:GetObject"] },
  ],
  /** Jobs re-enqueue themselves (retries) and keep their message invisible while they run (heartbeat). */
  worker: [
    { on: "table", actions: tableRw },
    { on: "jobs", actions: ["sqs:ChangeMessageVisibility", "sqs:SendMessage"] },
    { on: "jobs", actions: sqsTrigger, trigger: true },
    { on: "bucketObjects", actions: artifactRw },
  ],
  /** Schedules, retention (deletes), the reaper, the webhook outbox; BatchGet for due schedules' projects. */
  dispatch: [
    { on: "table", actions: [...tableRw, "dynamodb:BatchGetItem"] },
    { on: "jobs", actions: ["sqs:SendMessage"] },
    { on: "deliveries", actions: ["sqs:SendMessage"] },
    { on: "bucketObjects", actions: artifactRw },
  ],
  /** One POST per message; a retry is a new delayed message on its own queue. */
  deliver: [
    { on: "table", actions: tableRw },
    { on: "deliveries", actions: ["sqs:SendMessage"] },
    { on: "deliveries", actions: sqsTrigger, trigger: true },
  ],
  /** Pages only. */
  console: [],
  /** The worker's code, started for one job (no trigger). */
  task: [
    { on: "table", actions: tableRw },
    { on: "jobs", actions: ["sqs:ChangeMessageVisibility", "sqs:SendMessage"] },
    { on: "bucketObjects", actions: artifactRw },
  ],
  /**
   * The WAL archive: its index in the table, segments and base backups in the bucket (retention
   * deletes). SendMessage because its bundle holds core/jobs/queue.ts (restore points' pins come
   * through core/backups); it never queues a job.
   */
  archiver: [
    { on: "table", actions: tableRw },
    { on: "jobs", actions: ["sqs:SendMessage"] },
    { on: "bucketObjects", actions: ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"] },
  ],
} as const satisfies Record<FunctionSettings["entry"] | "task" | "archiver", readonly Grant[]>;

// ---------------------------------------------------------------------------------------------
// Data protection.

/**
 * The backups bucket keeps versions: a deleted or overwritten artifact stays recoverable as a
 * noncurrent version for this many days (retention's deletes included), then expires. DynamoDB's
 * deletion protection refuses DeleteTable on production (other stages stay removable).
 */
export const dataProtection = {
  bucketVersioning: true,
  noncurrentVersionDays: 30,
  tableDeletionProtection: (stage: string) => stage === "production",
} as const;
// ---------------------------------------------------------------------------------------------
// Queue.

/**
 * SQS must not hand a message to a second worker while the first may still be processing it:
 * AWS's rule for Lambda event sources is a visibility timeout of at least six times the function
 * timeout (the poller's retries of throttled invocations count against it).
 */
export const visibilityTimeoutFactor = 6;
export const queue = {
  visibilityTimeout: `${visibilityTimeoutFactor * toSeconds(functions.worker.timeout)} seconds`,
  /** A job message that fails this many receives goes to JobsDlq (the job record stays in the table). */
  dlqRetry: 5,
} as const satisfies { visibilityTimeout: Duration; dlqRetry: number };

/**
 * One job per invocation: a backup may take most of the 15 minutes, so batching several would
 * make them share one timeout. Partial batch responses stay on: the handler reports failed
 * records individually, which is what SQS needs to redeliver only those.
 */
export const workerSubscription = { batch: { size: 1, partialResponses: true } } as const;

/**
 * At most this many worker invocations at once (the SQS event source's maximum concurrency, 2 to
 * 1,000): excess job messages wait in the queue, they do not fail. Each invocation is one pg_dump
 * against a customer's cluster; the per-cluster cap (core/jobs) bounds what one cluster gets.
 */
export const workerMaxConcurrency = 50;

/**
 * Verification restores run on a verification cluster, never on a customer's production server:
 * the worker and the task require CAPYDB_VERIFY_CLUSTER_ID (CAPYDB_REQUIRE_VERIFY_CLUSTER=1), which
 * the deploy takes from its own environment (a cluster registered with capydb-admin; docs/deploy.md).
 */
export const verifyClusterVariable = "CAPYDB_VERIFY_CLUSTER_ID";

/** Alarm thresholds (infra/alarms.ts); the others alarm on anything above 0. */
export const alarms = {
  /** A job message older than this: workers saturated or failing (a job normally starts within a minute). */
  oldestJobMessageSeconds: 1800,
  /** Function errors in 5 minutes before it alarms (a single transient error is retried and not news). */
  functionErrors: 5,
  /** A cluster's WAL archive lag (now minus its newest restorable time) above this: the receiver is behind or down. */
  walArchiveLagSeconds: 120,
  /** WAL a replication slot keeps on a cluster above this: the receiver is behind, long before max_slot_wal_keep_size drops the slot. */
  walSlotRetainedBytes: 1024 ** 3,
} as const;

/** The API stage's throttle (API Gateway answers 429 beyond it), requests per second and burst. */
export const apiThrottle = { rateLimit: 200, burstLimit: 400 } as const;

/**
 * The webhook deliveries queue. A message is one attempt; retries are new delayed messages (or,
 * beyond SQS's 15 minutes, the dispatcher's sweep), so a receiver that keeps failing never pushes a
 * message to the DLQ: only messages the function cannot process at all (malformed, DynamoDB down
 * for every receive) go there.
 */
export const deliveriesQueue = {
  visibilityTimeout: `${visibilityTimeoutFactor * toSeconds(functions.deliver.timeout)} seconds`,
  dlqRetry: 5,
} as const satisfies { visibilityTimeout: Duration; dlqRetry: number };

/**
 * Up to ten deliveries per invocation, attempted in parallel (each bounded by its 10 s timeout and
 * its endpoint's concurrency slots); failed records reported one by one.
 */
export const deliverySubscription = { batch: { size: 10, partialResponses: true } } as const;

// ---------------------------------------------------------------------------------------------
// Dispatcher schedule.

export const dispatchSchedule = {
  schedule: "rate(1 minute)",
  /** A missed tick is caught up by the next one (watermark), so the scheduler never retries. */
  retries: 0,
} as const;

// ---------------------------------------------------------------------------------------------
// Bucket.

/**
 * S3 lifecycle rules (aws.s3.BucketLifecycleConfiguration `rules`). A worker that dies mid-upload
 * leaves parts that S3 bills for but no listing shows; abort them after a day. Artifacts
 * themselves are expired by the retention sweep (per-backup retention_days), not by S3.
 */
export const bucketLifecycleRules = [
  {
    id: "abort-incomplete-multipart-uploads",
    status: "Enabled",
    filter: { prefix: "" },
    abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
  },
  {
    // Versioning keeps what retention (or anyone) deletes for a while, then lets it go; the
    // delete markers left once their versions expired are removed too.
    id: "expire-noncurrent-versions",
    status: "Enabled",
    filter: { prefix: "" },
    noncurrentVersionExpiration: { noncurrentDays: dataProtection.noncurrentVersionDays },
    expiration: { expiredObjectDeleteMarker: true },
  },
];

/** Server-side encryption at rest with S3-managed keys (no KMS request charges). */
export const bucketEncryption = {
  rules: [
    {
      applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" },
      bucketKeyEnabled: true,
    },
  ],
};

// ---------------------------------------------------------------------------------------------
// Secrets.

/**
 * `sst.Secret`s, set per stage with `npx sst secret set <Name> <value> --stage <stage>`, and their
 * placeholders. The cluster key has none: a deploy without it fails, naming it. The Clerk settings
 * default to "" (Clerk sign-in off, API keys only), which core/config.ts reads as "not set".
 */
export const secrets = {
  ClusterSecretKey: undefined,
  ClerkJwksUrl: "",
  ClerkIssuer: "",
  ClerkAuthorizedParties: "",
} as const satisfies Partial<Record<LinkName, string | undefined>>;
export type SecretName = keyof typeof secrets;

// ---------------------------------------------------------------------------------------------
// Long jobs: the same job runner as a Fargate task (infra/task.ts).

/**
 * A job that moves more than this (pg_database_size for a dump or export, the artifact's size for
 * a restore or promote) runs as the task instead of in the worker: about 5 GB backs up and
 * verifies inside Lambda's 15 minutes with room to spare (README, "The 15-minute limit"). The
 * worker reads it as CAPYDB_TASK_THRESHOLD; binary units, as pg_size_pretty prints sizes.
 */
export const taskThreshold = "5 GB";

export const task = {
  /** functions/task.ts, bundled by scripts/build-functions.ts inside the image. */
  entry: "task",
  /** Graviton, like the functions: the pg tools of the layer are built for it. */
  architecture,
  /**
   * pg_dump, the SHA-256 + multipart upload, and then pg_restore (verification) each keep about a
   * core busy; 8 GB leaves room for the upload's parts and pg_restore's sort buffers.
   */
  cpu: "2 vCPU",
  memory: "8 GB",
  /**
   * Dumps and verifications stream, but a restore (preview, promote) may stage the artifact on
   * disk; 100 GB holds the artifact of a database of about 300 GB (custom format compresses
   * 3-6x). Fargate includes 20 GB; the other 80 cost $0.0089 an hour while a task runs.
   */
  storage: "100 GB",
  /**
   * What the worker links but the cluster key: a Task turns each link into a plain
   * `SST_RESOURCE_<Name>` variable of its task definition, which anyone with
   * ecs:DescribeTaskDefinition reads. The key comes as a secret instead (`secrets`).
   */
  link: ["Table", "Jobs", "Backups"],
  environment: { CAPYDB_PG_BIN_DIRS: pgBinDir, CAPYDB_REQUIRE_VERIFY_CLUSTER: "1" },
  /**
   * Variables ECS fills from an SSM SecureString parameter when the container starts (the task
   * definition holds only the parameter's ARN), by the sst.Secret whose value the parameter holds.
   */
  secrets: { CAPYDB_SECRET_KEY: "ClusterSecretKey" },
  /** Built on deploy (context: the repository root; it copies dist/pg-layer/pgsql to /opt/pgsql). */
  dockerfile: "infra/task/Dockerfile",
  /**
   * The task's lease (renewed by its heartbeat every minute) and the launch lease the worker
   * gives it: Fargate needs 1-3 minutes to place a task and pull its image, so 10 minutes.
   */
  leaseMinutes: 10,
} as const satisfies {
  entry: string;
  architecture: "arm64" | "x86_64";
  cpu: `${number} vCPU`;
  memory: `${number} GB`;
  storage: `${number} GB`;
  link: readonly LinkName[];
  environment: Record<string, string>;
  secrets: Record<string, SecretName>;
  dockerfile: string;
  leaseMinutes: number;
};

/**
 * The WAL archiver (infra/archiver.ts, functions/archiver.ts): an always-on Fargate service, one
 * task, in the task's image and cluster. One receiver per archived cluster (pg_receivewal and a
 * shipper that gzips a 16 MiB segment at a time: little CPU, tens of MB each) and one base backup
 * at a time (pg_basebackup, gzip and the upload keep about a core busy). Its disk holds the
 * spool (a few segments per cluster) and a base backup's verification copy (pg_verifybackup
 * checks an extracted directory): 100 GB, like the task, for clusters up to about 90 GB.
 */
export const archiver = {
  entry: "archiver",
  architecture,
  cpu: "1 vCPU",
  memory: "4 GB",
  storage: "100 GB",
  /** The task's links (core/config.ts wants the queue's URL). */
  link: ["Table", "Jobs", "Backups"],
  environment: { CAPYDB_PG_BIN_DIRS: pgBinDir, CAPYDB_WAL_SPOOL_DIR: "/tmp/capydb-wal" },
  secrets: { CAPYDB_SECRET_KEY: "ClusterSecretKey" },
  /** The task's image, which carries the archiver's bundle too; ECS runs it with this entrypoint. */
  dockerfile: "infra/task/Dockerfile",
  entrypoint: ["node", "/var/task/archiver.mjs"],
  /**
   * Exactly one: two receivers would fight over each cluster's replication slot. A deploy stops
   * the old task before it starts the new one (at most 100%, at least 0% running); the slot keeps
   * the WAL meanwhile, and the new task resumes from it.
   */
  desiredCount: 1,
} as const satisfies {
  entry: string;
  architecture: "arm64" | "x86_64";
  cpu: `${number} vCPU`;
  memory: `${number} GB`;
  storage: `${number} GB`;
  link: readonly LinkName[];
  environment: Record<string, string>;
  secrets: Record<string, SecretName>;
  dockerfile: string;
  entrypoint: readonly string[];
  desiredCount: number;
};

/** The variables that carry a secret's value: never a plain variable of a function or the task. */
export const secretVariables: Record<SecretName, string> = {
  ClusterSecretKey: "CAPYDB_SECRET_KEY",
  ClerkJwksUrl: "CLERK_JWKS_URL",
  ClerkIssuer: "CLERK_ISSUER",
  ClerkAuthorizedParties: "CLERK_AUTHORIZED_PARTIES",
};

/**
 * The network (infra/network.ts): the worker, the dispatcher and the task reach customers'
 * clusters from fixed addresses, NAT gateways on Elastic IPs the deploy outputs, so a customer
 * allows those on 5432 instead of the internet. One NAT gateway per zone (two zones, so a zone's
 * outage leaves the other's path): about $33 a month each plus $0.045 per GB processed, and the
 * Elastic IPs $3.60 a month each. S3 and DynamoDB, where the artifacts go, use gateway endpoints
 * (free, and no NAT charge per GB); SQS, ECR and CloudWatch Logs go through NAT.
 */
export const network = { az: 2, gatewayEndpoints: ["s3", "dynamodb"] } as const;

/** Functions that connect to customers' clusters, and so run in the VPC. */
export const inVpc = ["worker", "dispatch"] as const;
