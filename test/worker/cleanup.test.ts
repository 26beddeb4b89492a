import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackupForWork } from "../../core/backups/backups.ts";
import { sweepExpiredBackups } from "../../core/backups/retention.ts";
import { keys } from "../../core/db/keys.ts";
import { iso } from "../../core/deps.ts";
import { reapJobs } from "../../core/dispatch/reaper.ts";
import { getJobItem, jobStateIndex, type JobItem } from "../../core/jobs/jobs.ts";
import { createCluster } from "../../core/orgs/orgs.ts";
import { runJob } from "../../core/worker/run.ts";
import { throwawayDatabaseName } from "../../core/pg/scratch.ts";
import { fastOptions, objectExists, postBackup } from "./support.ts";

let env: TestEnv;
let tenant: Tenant;
let verifyClusterId: string;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "cleanup_src" });
  // A verification cluster (CAPYDB_VERIFY_CLUSTER_ID): the scratch databases of the attempts that used it live there.
  verifyClusterId = (await createCluster(env.deps, { name: uniq("verify"), url: env.infra.postgresUrl, insecure_tls: true })).id;
});
afterAll(async () => env?.cleanup());

const scratchLeft = async (backupId: string) =>
  (await env.query<{ datname: string }>("postgres", "SELECT datname FROM pg_database WHERE datname LIKE $1", [`${throwawayDatabaseName(backupId)}%`])).map(
    (r) => r.datname,
  );

/**
 * The state a backup job's worker leaves when it is killed (kill -9) during its last attempt, built
 * directly (a kill cannot be aimed at the restore or the upload reliably): the job running on
 * attempt 3 of 3 with its lease lapsed, the backup running with a complete artifact in S3 (killed
 * mid-restore) and a multipart upload with a part in flight (an earlier attempt killed
 * mid-upload), and a scratch database of every attempt, made through the project's cluster and
 * through the verification cluster.
 */
async function deadLastAttempt(opts: { verifyCluster?: string } = {}): Promise<{ job: JobItem; uploadId: string }> {
  const job = (await getJobItem(env.deps, (await postBackup(env, tenant)).id))!;
  const backup = (await getBackupForWork(env.deps, tenant.projectId, job.backup_id!))!;
  const lapsed = iso(new Date(Date.now() - 60_000));
  await env.deps.ddb.send(
    new UpdateCommand({
      TableName: env.names.table,
      Key: keys.job(job.id),
      UpdateExpression: "SET #s = :running, attempts = :n, claimed_by = :w, lease_expires_at = :lapsed, available_at = :null, gsi2pk = :gpk, gsi2sk = :gsk",
      ExpressionAttributeNames: { "#s": "state" },
      ExpressionAttributeValues: {
        ":running": "running",
        ":n": 3,
        ":w": "killed-worker",
        ":lapsed": lapsed,
        ":null": null,
        ...prefixed(jobStateIndex("running", lapsed, job.id)),
      },
    }),
  );
  const upload = await env.deps.s3.send(new CreateMultipartUploadCommand({ Bucket: env.deps.bucket, Key: backup.backup_key }));
  await env.deps.s3.send(
    new UploadPartCommand({ Bucket: env.deps.bucket, Key: backup.backup_key, UploadId: upload.UploadId!, PartNumber: 1, Body: Buffer.alloc(1024, 1) }),
  );
  await env.deps.s3.send(new PutObjectCommand({ Bucket: env.deps.bucket, Key: backup.backup_key, Body: Buffer.alloc(4096, 2) }));
  await env.deps.ddb.send(
    new UpdateCommand({
      TableName: env.names.table,
      Key: keys.backup(tenant.projectId, backup.id),
      UpdateExpression: "SET #s = :running, attempt = :n, upload_ids = :uploads, verify_cluster_id = :v",
      ExpressionAttributeNames: { "#s": "state" },
      ExpressionAttributeValues: { ":running": "running", ":n": 3, ":uploads": [upload.UploadId!], ":v": opts.verifyCluster ?? verifyClusterId },
    }),
  );
  for (const attempt of [1, 2, 3]) await env.query("postgres", `CREATE DATABASE ${pg.escapeIdentifier(throwawayDatabaseName(backup.id, attempt))}`);
  expect(await scratchLeft(backup.id)).toHaveLength(3);
  return { job: (await getJobItem(env.deps, job.id))!, uploadId: upload.UploadId! };
}

/** The stored item with its index attributes (the schemas strip them). */
const rawBackup = async (job: JobItem) =>
  (await env.deps.ddb.send(new GetCommand({ TableName: env.names.table, Key: keys.backup(job.project_id, job.backup_id!) }))).Item;

const prefixed = (o: Record<string, string | undefined>) => ({ ":gpk": o.gsi2pk, ":gsk": o.gsi2sk });

async function expectNothingLeft(job: JobItem, uploadId: string) {
  const backup = (await getBackupForWork(env.deps, job.project_id, job.backup_id!))!;
  expect(backup, JSON.stringify(backup)).toMatchObject({ state: "failed", verification_state: "failed" });
  expect(backup.cleanup_pending ?? false, "cleanup still pending").toBe(false);
  expect(await objectExists(env.deps, backup.backup_key), "the artifact is left in S3").toBe(false);
  const part = env.deps.s3.send(
    new UploadPartCommand({ Bucket: env.deps.bucket, Key: backup.backup_key, UploadId: uploadId, PartNumber: 2, Body: Buffer.from("x") }),
  );
  await expect(part, "the multipart upload is left").rejects.toMatchObject({ name: "NoSuchUpload" });
  expect(await scratchLeft(backup.id), "scratch databases are left").toEqual([]);
}

describe("a backup that fails for good leaves nothing behind", () => {
  it("the reaper fails a job whose last attempt's worker was killed: no artifact, upload or scratch database is left", async () => {
    const { job, uploadId } = await deadLastAttempt();
    const report = await reapJobs(env.deps);
    expect(report, JSON.stringify(report)).toMatchObject({ failed: 1, errors: 0 });
    expect(await getJobItem(env.deps, job.id)).toMatchObject({ state: "failed" });
    await expectNothingLeft(job, uploadId);
  });

  it("a delivery of that job (the worker's abandon path) cleans up the same way", async () => {
    const { job, uploadId } = await deadLastAttempt();
    const outcome = await runJob(env.deps, job.id, undefined, fastOptions);
    expect(outcome).toMatchObject({ status: "failed", ack: true });
    expect(await getJobItem(env.deps, job.id)).toMatchObject({ state: "failed", error: expect.stringMatching(/stopped responding/) });
    await expectNothingLeft(job, uploadId);
  });

  it("when the cleanup itself fails, the backup stays findable and the dispatcher's sweep finishes it", async () => {
    // A verification cluster that cannot be reached (its record is gone): the scratch databases there cannot be dropped yet.
    const { job, uploadId } = await deadLastAttempt({ verifyCluster: "cls_00000000000000000000000000" });
    await reapJobs(env.deps);
    expect(await rawBackup(job)).toMatchObject({ state: "failed", cleanup_pending: true, gsi2pk: keys.backupExpiryIndex });

    // The cluster is back (here: the backup names a reachable one again); the sweep, after the grace, retries.
    await env.deps.ddb.send(
      new UpdateCommand({
        TableName: env.names.table,
        Key: keys.backup(job.project_id, job.backup_id!),
        UpdateExpression: "SET verify_cluster_id = :v",
        ExpressionAttributeValues: { ":v": verifyClusterId },
      }),
    );
    const later = new Date(Date.now() + 11 * 60_000);
    const sweep = await sweepExpiredBackups({ ...env.deps, now: () => later }, "test-sweep");
    expect(sweep, JSON.stringify(sweep)).toMatchObject({ deleted: 1, failed: 0 });
    await expectNothingLeft(job, uploadId);
    expect((await rawBackup(job))?.gsi2pk, "off the sweep's index").toBeUndefined();
  });
});
