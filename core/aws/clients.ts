import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { Config } from "../config.ts";
import { createPresignGet, type PresignGet } from "./presign.ts";

/** The AWS clients, built in one place from the configuration (endpoint overrides for local use). */
export interface AwsClients {
  ddb: DynamoDBDocumentClient;
  sqs: SQSClient;
  s3: S3Client;
  /** Signs S3 GET URLs (downloads) without the S3 client: see core/aws/presign.ts. */
  presignGet: PresignGet;
}

/** Socket timeouts of one client: to connect, and of silence on an open connection (not a cap on a streaming upload). */
export interface ClientTimeouts {
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
}

export interface AwsTimeouts {
  /** Tries per call (the SDK's retries of throttling, 5xx and timeouts included). */
  maxAttempts: number;
  ddb: ClientTimeouts;
  sqs: ClientTimeouts;
  s3: ClientTimeouts;
}

/**
 * Every AWS call has a deadline, fitted to who makes it. Without one the SDK waits on a hung
 * connection for minutes (Node's default socket timeout), so an API request would hang instead of
 * answering 503, and a worker's heartbeat would outlive its 120 s lease.
 * - `api`: a request answers within about 5 s even when DynamoDB hangs (2 tries of 1.5 s, then 503);
 * - `worker`: every DynamoDB call gives up well inside the lease (3 tries of 10 s); S3 may be
 *   silent for 60 s on a part; SQS 30 s (the local loop long-polls for up to 20 s);
 * - `dispatch`: one tick has 50 s, split among its phases (3 tries of 5 s).
 */
export const awsTimeouts = {
  api: {
    maxAttempts: 2,
    ddb: { connectionTimeoutMs: 1000, requestTimeoutMs: 1500 },
    sqs: { connectionTimeoutMs: 1000, requestTimeoutMs: 1500 },
    s3: { connectionTimeoutMs: 1000, requestTimeoutMs: 5000 },
  },
  worker: {
    maxAttempts: 3,
    ddb: { connectionTimeoutMs: 3000, requestTimeoutMs: 10_000 },
    sqs: { connectionTimeoutMs: 3000, requestTimeoutMs: 30_000 },
    s3: { connectionTimeoutMs: 3000, requestTimeoutMs: 60_000 },
  },
  dispatch: {
    maxAttempts: 3,
    ddb: { connectionTimeoutMs: 2000, requestTimeoutMs: 5000 },
    sqs: { connectionTimeoutMs: 2000, requestTimeoutMs: 5000 },
    s3: { connectionTimeoutMs: 2000, requestTimeoutMs: 10_000 },
  },
} as const satisfies Record<string, AwsTimeouts>;
export type AwsRole = keyof typeof awsTimeouts;

// throwOnRequestTimeout: without it, newer SDKs only log a warning when the request timeout passes.
const handler = (t: ClientTimeouts) => ({
  requestHandler: { connectionTimeout: t.connectionTimeoutMs, requestTimeout: t.requestTimeoutMs, throwOnRequestTimeout: true },
});

export function createAwsClients(config: Pick<Config, "region" | "endpoint">, timeouts: AwsTimeouts = awsTimeouts.worker): AwsClients {
  return { ...createAwsClientsWithoutS3(config, timeouts), s3: createS3Client(config, timeouts) };
}

const base = (config: Pick<Config, "region" | "endpoint">, timeouts: AwsTimeouts) => ({
  region: config.region,
  maxAttempts: timeouts.maxAttempts,
  ...(config.endpoint
    ? {
        endpoint: config.endpoint,
        // The local stand-ins accept any credentials; never let the SDK hunt for real ones.
        credentials: { accessKeyId: "local", secretAccessKey: "local" },
      }
    : {}),
});

/**
 * DynamoDB, SQS and the S3 GET signer, but no S3 client: what the API function uses. Nothing here
 * refers to `@aws-sdk/client-s3`, so a bundle that imports only this leaves the S3 client out.
 * The signer shares DynamoDB's resolved credential chain (the Lambda role's) and hash.
 */
export function createAwsClientsWithoutS3(config: Pick<Config, "region" | "endpoint">, timeouts: AwsTimeouts = awsTimeouts.worker): Omit<AwsClients, "s3"> {
  const dynamo = new DynamoDBClient({ ...base(config, timeouts), ...handler(timeouts.ddb) });
  const ddb = DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } });
  return {
    ddb,
    sqs: new SQSClient({ ...base(config, timeouts), ...handler(timeouts.sqs) }),
    presignGet: createPresignGet({ region: config.region, endpoint: config.endpoint, credentials: dynamo.config.credentials, sha256: dynamo.config.sha256 }),
  };
}

export function createS3Client(config: Pick<Config, "region" | "endpoint">, timeouts: AwsTimeouts = awsTimeouts.worker): S3Client {
  return new S3Client({
    ...base(config, timeouts),
    ...handler(timeouts.s3),
    forcePathStyle: Boolean(config.endpoint),
    // The worker hashes every dump end to end (SHA-256 of the stream, checked again when the
    // verification reads the object back), so the SDK's per-part CRC32s would only burn CPU
    // that pg_dump needs.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}
