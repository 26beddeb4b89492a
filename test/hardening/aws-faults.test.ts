import { createTestEnv, type TestEnv } from "../support/env.ts";
import { UploadPartCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackupForWork } from "../../core/backups/backups.ts";
import type { Deps } from "../../core/deps.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import type { WorkerOptions } from "../../core/worker/options.ts";
import { startWorkerLoop } from "../../local/loops.ts";
import { CapturingLogger, fastOptions, postBackup, runQueueUntilSettled, smallDatabase, waitFor } from "../worker/support.ts";
import { canaryClusterUrl, canarySightings, expectCleanCompletion, faultyClients, onOwnQueues, scanTable, serviceError } from "./support.ts";

const logLines: string[] = [];
let env: TestEnv;
let clusterUrl: string;
beforeAll(async () => {
  // A short visibility timeout: a delivery that throws is retried in seconds, not half a minute.
  env = await onOwnQueues(await createTestEnv({ log: new CapturingLogger(logLines) }), { visibilityTimeoutSeconds: 3 });
  clusterUrl = await canaryClusterUrl(env);
});
afterAll(async () => {
  expect(canarySightings("log", logLines)).toEqual([]);
  expect(
    canarySightings(
      "item",
      (await scanTable(env.deps)).map((i) => JSON.stringify(i)),
    ),
  ).toEqual([]);
  await env?.cleanup();
});

/** The text of an SDK call's input, marshalled or not: enough to recognise which write it is. */
const text = (input: Record<string, unknown>) => JSON.stringify(input);
/** The completion: one transaction of the job, its backup and their outbox events. */
const isCompletion = (cmd: string, input: Record<string, unknown>) =>
  /^TransactWrite/.test(cmd) &&
  /"pk":(\{"S":)?"JOB#/.test(text(input)) &&
  /"sk":(\{"S":)?"BKP#/.test(text(input)) &&
  /":state":(\{"S":)?"completed"/.test(text(input));

/**
 * DynamoDB goes away from the first write that `starts` matches: that write fails as a 503 would,
 * and so does every call in the next `ms` (0: only that one write fails, a blip).
 */
function outage(starts: (cmd: string, input: Record<string, unknown>) => boolean, ms: number) {
  let from: number | undefined;
  const failed: string[] = [];
  const { ddb } = faultyClients(env, (cmd, input) => {
    const first = from === undefined && starts(cmd, input);
    if (first) from = Date.now();
    if (!first && (from === undefined || Date.now() - from >= ms)) return undefined;
    failed.push(cmd);
    return serviceError("ServiceUnavailable");
  });
  return { ddb, failed };
}

describe("S3 fails in the middle of a multipart upload", () => {
  it("is transient: the upload is aborted, the job retried, one backup made", async () => {
    // prepare: a dump of two 5 MiB parts (random text compresses about 2:1); UploadPart fails once
    const db = await env.createDatabase({ prefix: "big" });
    await env.query(
      db,
      "CREATE TABLE filler (id int PRIMARY KEY, payload text); INSERT INTO filler SELECT g, md5(random()::text) || md5(random()::text) FROM generate_series(1, 200000) g",
    );
    const tenant = await env.seedTenant({ database: db, clusterUrl });
    const job = await postBackup(env, tenant);
    let failedUpload: string | undefined;
    const { s3 } = faultyClients(env, (cmd, input) => {
      if (cmd !== "UploadPartCommand" || failedUpload) return undefined;
      failedUpload = String(input.UploadId);
      return serviceError("InternalError", 500);
    });

    // act
    await runQueueUntilSettled({ ...env.deps, s3 }, [job.id], { ...fastOptions, partSizeBytes: 5 * 1024 * 1024 });

    // assess
    expect(failedUpload, "the fault was injected").toBeDefined();
    const { job: done, backup } = await expectCleanCompletion(env, env.deps, job.id);
    // Completed on its retry: retry_classification is null; the failed attempt's class is in the log.
    expect(done).toMatchObject({ attempts: 2, retry_classification: null });
    expect(backup.size_bytes).toBeGreaterThan(5 * 1024 * 1024);
    expect(backup.row_counts).toEqual({ "public.filler": 200000 });
    expect(logLines.some((l) => l.includes(job.id) && l.includes("will retry") && l.includes("Object storage"))).toBe(true);
    // the failed attempt's upload was aborted, not left to accumulate parts
    const part = env.deps.s3.send(
      new UploadPartCommand({ Bucket: env.deps.bucket, Key: backup.backup_key, UploadId: failedUpload, PartNumber: 3, Body: Buffer.from("x") }),
    );
    await expect(part).rejects.toMatchObject({ name: "NoSuchUpload" });
  });
});

/** Runs the worker loop until the job and its backup are both completed (or the job failed). */
async function runUntilBothComplete(deps: Deps, jobId: string, options: Partial<WorkerOptions>) {
  const loop = startWorkerLoop(deps, createWorkerHandler(deps, options), { concurrency: 2, batchSize: 5, waitSeconds: 1 });
  try {
    await waitFor(`job ${jobId} and its backup to complete`, async () => {
      const job = await getJobItem(env.deps, jobId);
      if (job?.state === "failed") throw new Error(`the job failed: ${JSON.stringify(job)}`);
      if (job?.state !== "completed") return false;
      return (await getBackupForWork(env.deps, job.project_id, job.backup_id!))?.state === "completed";
    });
  } finally {
    await loop.stop();
  }
}

describe("DynamoDB unavailable while a job completes", () => {
  let db: string;
  beforeAll(async () => {
    db = await smallDatabase(env, 100);
  });
  const options = { ...fastOptions, leaseMs: 6000, heartbeatMs: 1000, visibilityMarginSeconds: 1 };

  it.each([
    ["a blip: only one send of the completion transaction fails", 0],
    ["an outage of 2.5 s from the completion transaction on", 2500],
  ])("%s: nothing is half done, a later attempt completes the job, the backup and their events once", async (_name, ms) => {
    // prepare
    const job = await postBackup(env, await env.seedTenant({ database: db, clusterUrl }));
    const down = outage(isCompletion, ms);

    // act
    await runUntilBothComplete({ ...env.deps, ddb: down.ddb }, job.id, options);

    // assess: states agree, one event each, and nothing was left behind
    expect(down.failed.length, "the outage happened").toBeGreaterThan(0);
    const { job: done } = await expectCleanCompletion(env, env.deps, job.id);
    // A blip is absorbed by the same attempt (the transaction is sent again with its token); an
    // outage outlasts those resends and a later attempt completes the job.
    expect(done.attempts).toBe(ms === 0 ? 1 : 2);
  });
});
