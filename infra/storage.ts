import { bucketEncryption, bucketLifecycleRules, dataProtection, deliveriesQueue, queue as queueSettings, tableArgs } from "./settings.ts";

/** The single table: fields, indexes and TTL come from core/db/table.ts via settings.ts. */
export const table = new sst.aws.Dynamo("Table", {
  ...tableArgs,
  transform: {
    table: {
      // SST turns it on today; stated here so a change of SST's default cannot turn it off.
      pointInTimeRecovery: { enabled: true },
      // Production's table refuses DeleteTable (console, CLI or a stray `sst remove`).
      deletionProtectionEnabled: dataProtection.tableDeletionProtection($app.stage),
    },
  },
});

/** Job messages that failed every receive; the admin CLI inspects and redrives them. */
export const jobsDlq = new sst.aws.Queue("JobsDlq", {
  // SQS's maximum (14 days): time to look at a poisoned message before SQS drops it.
  transform: { queue: { messageRetentionSeconds: 14 * 24 * 3600 } },
});

export const jobs = new sst.aws.Queue("Jobs", {
  visibilityTimeout: queueSettings.visibilityTimeout,
  dlq: { queue: jobsDlq.arn, retry: queueSettings.dlqRetry },
});

/** Webhook delivery messages that failed every receive (kept 14 days for a look). */
export const deliveriesDlq = new sst.aws.Queue("DeliveriesDlq", {
  transform: { queue: { messageRetentionSeconds: 14 * 24 * 3600 } },
});

/** Webhook deliveries: one message per attempt of one delivery. */
export const deliveries = new sst.aws.Queue("Deliveries", {
  visibilityTimeout: deliveriesQueue.visibilityTimeout,
  dlq: { queue: deliveriesDlq.arn, retry: deliveriesQueue.dlqRetry },
});

/** Backup artifacts. Private (all four public-access blocks), encrypted at rest. */
export const bucket = new sst.aws.Bucket("Backups", {
  // Deleted or overwritten artifacts stay recoverable for a while (lifecycle: settings.ts).
  versioning: dataProtection.bucketVersioning,
  transform: {
    publicAccessBlock: {
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    },
  },
});

new aws.s3.BucketServerSideEncryptionConfiguration("BackupsEncryption", {
  bucket: bucket.name,
  ...bucketEncryption,
});

// sst.aws.Bucket's own `lifecycle` only knows expirations; aborting multipart uploads needs the
// resource itself. The bucket has no other lifecycle configuration, so this one owns them all.
new aws.s3.BucketLifecycleConfiguration("BackupsLifecycle", {
  bucket: bucket.name,
  rules: bucketLifecycleRules,
});
