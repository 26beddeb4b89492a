import { createTestEnv, type TestEnv } from "../support/env.ts";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enqueueJobs } from "../../core/jobs/queue.ts";
import { getLock } from "../../core/jobs/locks.ts";
import { storedEvents } from "../support/events.ts";
import { pickPgTools } from "../../core/pg/pgtools.ts";
import { backupOf, fastOptions, libpqEnv, listKeys, objectBytes, postBackup, runQueueUntilSettled, runTool, sha256, smallDatabase } from "./support.ts";

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => env?.cleanup());

/** A fingerprint of the demo shop's data: row counts and an md5 over every order line. */
async function fingerprint(db: string) {
  const [row] = await env.query<{ customers: string; orders: string; items: string; digest: string; seq: string }>(
    db,
    `SELECT (SELECT count(*) FROM customers) AS customers, (SELECT count(*) FROM orders) AS orders,
            (SELECT count(*) FROM order_items) AS items,
            (SELECT md5(string_agg(order_id || ':' || product_id || ':' || quantity, ',' ORDER BY order_id, product_id)) FROM order_items) AS digest,
            (SELECT last_value FROM invoice_number_seq) AS seq`,
  );
  return row;
}

describe("a backup end to end", () => {
  it("POST -> the job completes -> the backup is listed completed and verified, the object matches and restores", async () => {
    // prepare
    const tenant = await env.seedTenant(); // the demo shop: FKs, index, sequence, view, a few MB
    const key = await tenant.key();

    // act
    const job = await postBackup(env, tenant, { label: "e2e" });
    const [settled] = await runQueueUntilSettled(env.deps, [job.id]);

    // assess: the job
    expect(settled?.state, JSON.stringify(settled)).toBe("completed");
    expect(settled?.attempts).toBe(1);
    expect(settled?.last_exit_code).toBe(0);
    expect(settled?.completed_at).not.toBeNull();
    const jobRes = await env.app().request(`/v1/jobs/${job.id}`, { headers: { authorization: `Bearer ${key}` } });
    const jobBody = (await jobRes.json()) as { job: Record<string, unknown> };
    expect(jobRes.status, JSON.stringify(jobBody)).toBe(200);
    expect(jobBody.job.state).toBe("completed");

    // the listed backup
    const listRes = await env.app().request(`/v1/projects/${tenant.projectId}/backups`, { headers: { authorization: `Bearer ${key}` } });
    const list = (await listRes.json()) as { backups: Record<string, unknown>[] };
    expect(listRes.status, JSON.stringify(list)).toBe(200);
    expect(list.backups).toHaveLength(1);
    const listed = list.backups[0]!;
    expect(listed).toMatchObject({
      state: "completed",
      verification_state: "verified",
      verification_error: null,
      label: "e2e",
      backup_key: `projects/${tenant.projectId}/backups/${listed.id as string}.dump`,
    });
    expect(listed.size_bytes).toBeGreaterThan(100_000);
    expect(listed.verified_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    // the stored record: checksum, versions, counts from the snapshot, timings
    const backup = await backupOf(env.deps, settled!);
    expect(backup.row_counts).toMatchObject({ "public.customers": 20000, "public.orders": 40000, "public.products": 500 });
    expect(backup.pg_dump_version).toMatch(/^\d+\.\d+$/);
    expect(backup.server_version).toMatch(/^\d+\.\d+/);
    expect(backup.dump_ms).toBeGreaterThan(0);
    expect(backup.restore_ms).toBeGreaterThan(0);

    // the object: its SHA-256 and size match, the metadata carries checksum and versions
    const bytes = await objectBytes(env.deps, backup.backup_key);
    expect(bytes.length).toBe(listed.size_bytes);
    expect(sha256(bytes)).toBe(backup.sha256);
    expect(bytes.subarray(0, 5).toString()).toBe("PGDMP"); // custom format
    const head = await env.deps.s3.send(new HeadObjectCommand({ Bucket: env.deps.bucket, Key: backup.backup_key }));
    expect(head.Metadata).toMatchObject({ sha256: backup.sha256, "pg-dump-version": backup.pg_dump_version, "server-version": backup.server_version });

    // restoring the object into a new database reproduces the data
    const copy = await env.createDatabase({ prefix: "restored" });
    const tools = await pickPgTools({ major: 15, text: "15" }, []);
    const restore = await runTool(tools.pgRestore, ["--no-owner", "--no-acl", "--exit-on-error", "--dbname", copy], libpqEnv(env.pgUrl(), copy), bytes);
    expect(restore.code, restore.stderr).toBe(0);
    expect(await fingerprint(copy)).toEqual(await fingerprint(tenant.database));

    // the event, the lock
    // exactly one backup.completed and one job.completed, committed with the state change
    const events = await storedEvents(env.deps, { type: "backup.completed", field: "backup_id", value: backup.id });
    expect(events.map((e) => e.event)).toEqual([
      expect.objectContaining({
        type: "backup.completed",
        data: expect.objectContaining({
          backup_id: backup.id,
          job_id: job.id,
          sha256: backup.sha256,
          size_bytes: backup.size_bytes,
          state: "completed",
          verification_state: "verified",
        }),
      }),
    ]);
    expect(await storedEvents(env.deps, { type: "job.completed", field: "job_id", value: job.id })).toHaveLength(1);
    expect(await getLock(env.deps, settled!.locked_resource!)).toBeUndefined();
    // the scratch database is gone
    const scratch = await env.query("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'capydb_verify_%' AND datname = $1", [
      `capydb_verify_${backup.id.slice(4)}`,
    ]);
    expect(scratch).toEqual([]);
  });

  it("makes one backup when the same message is delivered twice", async () => {
    // prepare
    const tenant = await env.seedTenant({ database: await smallDatabase(env) });
    const job = await postBackup(env, tenant);
    await enqueueJobs(env.deps, [job.id]); // the duplicate

    // act
    const [settled] = await runQueueUntilSettled(env.deps, [job.id]);

    // assess
    expect(settled?.state, JSON.stringify(settled)).toBe("completed");
    expect(settled?.attempts).toBe(1);
    expect(await listKeys(env.deps, `projects/${tenant.projectId}/`)).toHaveLength(1);
    const backup = await backupOf(env.deps, settled!);
    expect(backup.state).toBe("completed");
    expect(sha256(await objectBytes(env.deps, backup.backup_key))).toBe(backup.sha256);
  });

  it("never dumps one database twice at once: two queued backups both complete, one after the other", async () => {
    // prepare
    const tenant = await env.seedTenant({ database: await smallDatabase(env, 2000) });
    const first = await postBackup(env, tenant);
    const second = await postBackup(env, tenant);
    const intervals = new Map<string, { start: number; end?: number }>();
    let concurrent = 0;
    let maxConcurrent = 0;
    const options = {
      ...fastOptions,
      hooks: {
        onDumpStart: (jobId: string) => {
          concurrent++;
          maxConcurrent = Math.max(maxConcurrent, concurrent);
          intervals.set(jobId, { start: Date.now() });
        },
        onDumpEnd: (jobId: string) => {
          concurrent--;
          intervals.get(jobId)!.end = Date.now();
        },
      },
    };

    // act: both messages arrive in one batch and are processed in parallel
    const jobs = await runQueueUntilSettled(env.deps, [first.id, second.id], options);

    // assess
    for (const j of jobs) {
      expect(j.state, JSON.stringify(j)).toBe("completed");
      expect(j.attempts, "a busy lock must not spend an attempt").toBe(1);
    }
    expect(maxConcurrent).toBe(1);
    expect(intervals.size).toBe(2);
    const keysStored = await listKeys(env.deps, `projects/${tenant.projectId}/`);
    expect(keysStored).toHaveLength(2);
    expect(await getLock(env.deps, first.locked_resource!)).toBeUndefined();
    const dlq = await env.deps.sqs.send(new GetQueueAttributesCommand({ QueueUrl: env.dlqUrl, AttributeNames: ["ApproximateNumberOfMessages"] }));
    expect(dlq.Attributes?.ApproximateNumberOfMessages).toBe("0");
  });
});
