import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { awsTimeouts, createAwsClients, createAwsClientsWithoutS3, type AwsRole } from "./aws/clients.ts";
import type { PresignGet } from "./aws/presign.ts";
import type { Config } from "./config.ts";
import { createLogger, type Log } from "./log.ts";

/** What the webhook SSRF rules (core/webhooks/destination.ts) let through; declared here because Deps carries it. */
export interface DestinationPolicy {
  /**
   * The local stack only (`npm start`): loopback receivers are allowed, over http too. Never set
   * by a deploy; tests of the refusals run without it.
   */
  allowLoopbackHttp: boolean;
  /** Name resolution (default: the system resolver, every address). Tests inject answers a real resolver here cannot give. */
  lookup?: (hostname: string) => Promise<{ address: string; family: number }[]>;
}

/**
 * Everything a core function needs from the outside world, passed explicitly so that the same
 * code runs on Lambda, in the local stack and in tests (with their own table, queue, clock).
 */
export interface Deps {
  ddb: DynamoDBDocumentClient;
  table: string;
  sqs: SQSClient;
  queueUrl: string;
  dlqUrl?: string;
  /** The webhook deliveries queue; without it deliveries are recorded but not sent. */
  deliveryQueueUrl?: string;
  /** Where webhooks may go (SSRF rules, core/webhooks/destination.ts); default: public https receivers only. */
  webhookPolicy?: DestinationPolicy;
  s3: S3Client;
  /** Signs S3 GET URLs of the bucket's objects (downloads); needs no S3 client. */
  presignGet: PresignGet;
  bucket: string;
  /** Key that encrypts stored cluster passwords. */
  secretKey: Buffer;
  pgBinDirs: string[];
  /** Days an export's dump is kept for download (CAPYDB_EXPORT_RETENTION_DAYS, default 7). */
  exportRetentionDays: number;
  workerId: string;
  log: Log;
  now: () => Date;
  /** Live preview databases a project may have at once (default 5). */
  previewLimit?: number;
}

/** `role` picks the AWS clients' timeouts (see `awsTimeouts`): the API's are short, the worker's fit its lease. */
export function createDeps(config: Config, overrides: Partial<Deps> = {}, role: AwsRole = "worker"): Deps {
  return { ...settings(config), ...createAwsClients(config, awsTimeouts[role]), ...overrides };
}

/**
 * Deps without an S3 client, for the API (functions/api.ts, and the local stack's API): it never
 * reads or writes an object, it only signs download URLs (`presignGet`). Leaving the client out
 * keeps `@aws-sdk/client-s3` out of the API's bundle; code that reaches for `deps.s3` there gets
 * an error naming the mistake rather than a client the function has no rights for.
 */
export function createDepsWithoutS3(config: Config, overrides: Partial<Omit<Deps, "s3">> = {}, role: AwsRole = "api"): Deps {
  const deps = { ...settings(config), ...createAwsClientsWithoutS3(config, awsTimeouts[role]), ...overrides };
  return Object.defineProperty(deps, "s3", {
    enumerable: false,
    get(): never {
      throw new Error("this function has no S3 client (createDepsWithoutS3): the API only signs download URLs, with deps.presignGet");
    },
  }) as Deps;
}

function settings(config: Config): Omit<Deps, "ddb" | "sqs" | "s3" | "presignGet"> {
  return {
    table: config.table,
    queueUrl: config.queueUrl,
    dlqUrl: config.dlqUrl,
    deliveryQueueUrl: config.deliveryQueueUrl,
    webhookPolicy: { allowLoopbackHttp: config.webhooksAllowLoopbackHttp },
    bucket: config.bucket,
    secretKey: Buffer.from(config.secretKey, "base64"),
    pgBinDirs: config.pgBinDirs,
    exportRetentionDays: config.exportRetentionDays,
    workerId: config.workerId,
    previewLimit: config.previewLimit,
    log: createLogger(config.logLevel),
    now: () => new Date(),
  };
}

/** RFC 3339 UTC without milliseconds: `2026-11-26T02:15:00Z`. */
export function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}
