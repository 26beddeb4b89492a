import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { Config } from "../config.ts";

/** The AWS clients, built in one place from the configuration (endpoint overrides for local use). */
export interface AwsClients {
  ddb: DynamoDBDocumentClient;
  sqs: SQSClient;
  s3: S3Client;
}

export function createAwsClients(config: Pick<Config, "region" | "endpoint">): AwsClients {
  const local = config.endpoint
    ? {
        endpoint: config.endpoint,
        // The local stand-ins accept any credentials; never let the SDK hunt for real ones.
        credentials: { accessKeyId: "local", secretAccessKey: "local" },
      }
    : {};
  const base = { region: config.region, maxAttempts: 3, ...local };
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient(base), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return {
    ddb,
    sqs: new SQSClient(base),
    s3: new S3Client({
      ...base,
      forcePathStyle: Boolean(config.endpoint),
      // The worker hashes every dump end to end (SHA-256 of the stream, checked again when the
      // verification reads the object back), so the SDK's per-part CRC32s would only burn CPU
      // that pg_dump needs.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    }),
  };
}
