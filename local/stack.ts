import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { startFauxqs } from "fauxqs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startDynamoLocal, type DynamoLocal } from "./dynamodb.ts";
import { startPostgres, type PostgresServer } from "./postgres.ts";
import { startAwsProxy } from "./proxy.ts";
import { ensureBucket, ensureQueues, ensureTable } from "./resources.ts";

export const LOCAL_REGION = "us-east-1";
export const localCredentials = { accessKeyId: "local", secretAccessKey: "local" };

export interface InfraOptions {
  /** Where persistent data lives (`.capydb`); without `persist`, DynamoDB and fauxqs stay in memory. */
  dir: string;
  persist: boolean;
  ports: { aws: number; dynamodb: number; fauxqs: number; postgres: number };
  postgresPassword: string;
  /**
   * DynamoDB Local and PostgreSQL in process groups of their own (`npm start`): a Ctrl-C reaches
   * only the service, which stops them after the loops and the API that use them, so nothing logs
   * a failed call while stopping. Tests and the bench leave them in theirs.
   */
  ownProcessGroups?: boolean;
}

/** The embedded stand-ins: DynamoDB Local, fauxqs (SQS + S3), one AWS endpoint in front, PostgreSQL. */
export interface Infra {
  endpoint: string;
  dynamo: DynamoLocal;
  fauxqsEndpoint: string;
  postgres: PostgresServer;
  clients(): { ddb: DynamoDBClient; sqs: SQSClient; s3: S3Client };
  stop(): Promise<void>;
}

/**
 * Starts every stand-in. If one fails to start, the ones already started are stopped before the
 * error propagates, so a half-started stack leaves no process behind.
 */
export async function startInfra(opts: InfraOptions): Promise<Infra> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    stops.length = 0;
  };
  try {
    mkdirSync(opts.dir, { recursive: true });
    // allSettled, not all: when one fails, wait for the others to finish starting so they are stopped too.
    const settled = await Promise.allSettled([
      startDynamoLocal({
        port: opts.ports.dynamodb,
        dbPath: opts.persist ? join(opts.dir, "dynamodb") : undefined,
        ownProcessGroup: opts.ownProcessGroups,
      }).then((d) => {
        stops.push(d.stop);
        return d;
      }),
      startFauxqs({
        port: opts.ports.fauxqs,
        host: "localhost",
        logger: false,
        defaultRegion: LOCAL_REGION,
        ...(opts.persist ? { dataDir: join(opts.dir, "fauxqs"), s3StorageDir: join(opts.dir, "s3") } : {}),
      }).then((f) => {
        stops.push(() => f.stop());
        return f;
      }),
      startPostgres({
        dataDir: join(opts.dir, "postgres"),
        port: opts.ports.postgres,
        password: opts.postgresPassword,
        ownProcessGroup: opts.ownProcessGroups,
        // The WAL archive streams from it (initdb's pg_hba.conf already has the replication lines);
        // the cap keeps a stopped receiver from filling the disk (past it the slot is lost: a gap).
        settings: { wal_level: "replica", max_wal_senders: "10", max_slot_wal_keep_size: "1GB" },
      }).then((p) => {
        stops.push(p.stop);
        return p;
      }),
    ] as const);
    const failed = settled.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    const [dynamo, fauxqs, postgres] = settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
      DynamoLocal,
      Awaited<ReturnType<typeof startFauxqs>>,
      PostgresServer,
    ];
    const proxy = await startAwsProxy({ port: opts.ports.aws, dynamodb: dynamo.endpoint, fauxqs: `http://127.0.0.1:${fauxqs.port}` });
    stops.push(proxy.stop);
    const base = { region: LOCAL_REGION, endpoint: proxy.endpoint, credentials: localCredentials };
    return {
      endpoint: proxy.endpoint,
      dynamo,
      fauxqsEndpoint: `http://127.0.0.1:${fauxqs.port}`,
      postgres,
      clients: () => ({ ddb: new DynamoDBClient(base), sqs: new SQSClient(base), s3: new S3Client({ ...base, forcePathStyle: true }) }),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Creates the table, the jobs queue with its DLQ, the bucket, and (when named) the webhook deliveries queue with its DLQ. Idempotent. */
export async function provision(infra: Infra, names: { table: string; queue: string; bucket: string; deliveryQueue?: string }) {
  const { ddb, sqs, s3 } = infra.clients();
  await ensureTable(ddb, names.table);
  const queues = await ensureQueues(sqs, names.queue);
  await ensureBucket(s3, names.bucket);
  const deliveries = names.deliveryQueue ? await ensureQueues(sqs, names.deliveryQueue, { visibilityTimeoutSeconds: 60 }) : undefined;
  return { table: names.table, bucket: names.bucket, ...queues, deliveryQueueUrl: deliveries?.queueUrl };
}
