import type { TestEnv } from "../support/env.ts";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { freshEnvs, receiveAll, tick, withClock } from "./support.ts";
import { getBackup, newBackupItem } from "../../core/backups/backups.ts";
import { keys } from "../../core/db/keys.ts";
import { newId } from "../../core/ids.ts";
import { claimJob, completeJob, getJobItem, newJobItem, renewJobLease, type JobItem } from "../../core/jobs/jobs.ts";
import { acquireLock, getLock } from "../../core/jobs/locks.ts";
import type { Project } from "../../core/orgs/orgs.ts";

const freshEnv = freshEnvs();

const T0 = new Date("2026-11-26T02:15:00Z");
const after = (ms: number) => new Date(T0.getTime() + ms);

/** A committed backup + pending job whose queue message was never sent (the send failed or was lost). */
async function committedJob(env: TestEnv, opts: { maxAttempts?: number; availableAt?: string } = {}): Promise<JobItem> {
  const p: Project = {
    type: "project",
    id: newId("project"),
    organization_id: "org_test",
    cluster_id: "cls_test",
    name: "p",
    database_name: "app",
    created_at: "2026-11-01T00:00:00Z",
  };
  const jobId = newId("job", T0);
  const backup = newBackupItem(p, T0, { jobId, retentionDays: 14, label: "manual", scheduleId: null });
  const job = newJobItem(T0, {
    id: jobId,
    organization_id: p.organization_id,
    project_id: p.id,
    cluster_id: p.cluster_id,
    database_name: p.database_name,
    type: "project.backup",
    backup_id: backup.id,
    ...(opts.maxAttempts ? { max_attempts: opts.maxAttempts } : {}),
    ...(opts.availableAt ? { available_at: opts.availableAt } : {}),
  });
  await env.deps.ddb.send(new PutCommand({ TableName: env.deps.table, Item: { ...keys.backup(p.id, backup.id), ...backup } }));
  await env.deps.ddb.send(new PutCommand({ TableName: env.deps.table, Item: job }));
  return job;
}

/** A worker that claims the job, takes its lock, and then dies (no heartbeat, no completion). */
async function dyingWorker(env: TestEnv, job: JobItem, at: Date, leaseMs = 60_000): Promise<JobItem> {
  const deps = withClock(env.deps, at);
  const claimed = await claimJob(deps, (await getJobItem(deps, job.id))!, "worker-that-dies", leaseMs);
  expect(claimed).toBeDefined();
  // The worker names the lock's owner per attempt.
  expect(await acquireLock(deps, claimed!.locked_resource!, lockOwner(claimed!), leaseMs)).toBe(true);
  return claimed!;
}

const lockOwner = (job: JobItem) => `${job.id}#${job.attempts}`;

describe("reaper: lost messages", () => {
  it("a pending job unclaimed for more than two minutes is enqueued again, then not again before another two minutes", async () => {
    // prepare
    const env = await freshEnv();
    const job = await committedJob(env);

    // act + assess
    expect((await tick(env, after(60_000))).reaper?.requeued).toBe(0);
    expect((await tick(env, after(120_000))).reaper?.requeued).toBe(0); // exactly two minutes: not yet
    const r = await tick(env, after(121_000));
    expect(r.reaper).toMatchObject({ requeued: 1, jobIds: [job.id] });
    expect(await receiveAll(env.deps)).toEqual([job.id]);
    expect(await getJobItem(env.deps, job.id)).toMatchObject({ state: "pending", attempts: 0, available_at: "2026-11-26T02:17:01Z" });

    expect((await tick(env, after(180_000))).reaper?.requeued).toBe(0);
    expect((await tick(env, after(242_000))).reaper?.requeued).toBe(1); // still nobody claimed it
  });

  it("leaves alone a job a worker claims or that is due later", async () => {
    const env = await freshEnv();
    const claimed = await committedJob(env);
    await claimJob(withClock(env.deps, after(10_000)), claimed, "w1", 15 * 60_000);
    await committedJob(env, { availableAt: "2026-11-26T02:25:00Z" }); // a retry delay, or a staggered catch-up start
    const r = await tick(env, after(5 * 60_000));
    expect(r.reaper).toMatchObject({ requeued: 0, retried: 0, failed: 0 });
  });
});

describe("reaper: dead workers", () => {
  it("a running job whose lease lapsed goes back to pending, is enqueued, and its lock is released", async () => {
    // prepare
    const env = await freshEnv();
    const job = await dyingWorker(env, await committedJob(env), after(5_000));

    // act: within the lease nothing happens; after it, the job is retried
    expect((await tick(env, after(60_000))).reaper).toMatchObject({ retried: 0, failed: 0 });
    const r = await tick(env, after(66_000));

    // assess
    expect(r.reaper).toMatchObject({ retried: 1, failed: 0, locksReleased: 1, jobIds: [job.id] });
    const now = await getJobItem(env.deps, job.id);
    expect(now).toMatchObject({
      state: "pending",
      attempts: 1,
      retry_classification: "transient",
      lease_expires_at: null,
      available_at: "2026-11-26T02:16:06Z",
    });
    expect(now?.error).toMatch(/the worker stopped responding \(its lease expired at 2026-11-26T02:16:05Z\); retrying/);
    expect(await receiveAll(env.deps)).toEqual([job.id]);
    expect(await getLock(env.deps, job.locked_resource!)).toBeUndefined();

    // The retry can be claimed by a live worker and completed.
    const deps = withClock(env.deps, after(70_000));
    const again = await claimJob(deps, now!, "worker-2", 60_000);
    expect(again).toMatchObject({ state: "running", attempts: 2 });
    expect(await completeJob(deps, again!)).toMatchObject({ state: "completed" });
    expect((await tick(env, after(10 * 60_000))).reaper).toMatchObject({ requeued: 0, retried: 0, failed: 0 });
  });

  it("with no attempts left the job fails saying the worker stopped responding, and so does its backup", async () => {
    const env = await freshEnv();
    const job = await dyingWorker(env, await committedJob(env, { maxAttempts: 1 }), after(5_000));
    const r = await tick(env, after(2 * 60_000));
    expect(r.reaper).toMatchObject({ retried: 0, failed: 1, locksReleased: 1 });
    const failed = await getJobItem(env.deps, job.id);
    expect(failed).toMatchObject({ state: "failed", attempts: 1, completed_at: "2026-11-26T02:17:00Z" });
    expect(failed?.error).toMatch(/the worker stopped responding.*no attempts left/);
    expect(await receiveAll(env.deps)).toEqual([]);
    const backup = await getBackup(env.deps, job.project_id, job.backup_id!);
    expect(backup).toMatchObject({ state: "failed", verification_state: "failed" });
    expect(backup?.verification_error).toMatch(/worker stopped responding/);
    // Nothing more on later ticks.
    expect((await tick(env, after(10 * 60_000))).reaper).toMatchObject({ retried: 0, failed: 0, requeued: 0 });
  });

  it("a worker that renewed its lease keeps its job and its lock", async () => {
    const env = await freshEnv();
    const job = await dyingWorker(env, await committedJob(env), after(5_000));
    await renewJobLease(withClock(env.deps, after(50_000)), job, 60_000);
    const r = await tick(env, after(90_000));
    expect(r.reaper).toMatchObject({ retried: 0, failed: 0, locksReleased: 0 });
    expect(await getJobItem(env.deps, job.id)).toMatchObject({ state: "running", claimed_by: "worker-that-dies" });
    expect(await getLock(env.deps, job.locked_resource!)).toMatchObject({ owner: lockOwner(job) });
  });

  it("keeps a lock whose own lease is still live, and never touches another job's lock", async () => {
    const env = await freshEnv();
    const job = await dyingWorker(env, await committedJob(env), after(5_000), 60_000);
    // The dead worker had taken its lock for longer than its job lease.
    await acquireLock(withClock(env.deps, after(6_000)), job.locked_resource!, lockOwner(job), 10 * 60_000);
    // A lapsed lock of some other job on another database.
    await acquireLock(withClock(env.deps, after(6_000)), "database:cls_test/other", "job_other#1", 60_000);

    const r = await tick(env, after(2 * 60_000));

    expect(r.reaper).toMatchObject({ retried: 1, locksReleased: 0 });
    expect(await getLock(env.deps, job.locked_resource!)).toMatchObject({ owner: lockOwner(job) });
    expect(await getLock(env.deps, "database:cls_test/other")).toMatchObject({ owner: "job_other#1" });
    expect(await acquireLock(withClock(env.deps, after(3 * 60_000)), job.locked_resource!, "job_other#1", 60_000)).toBe(false);
  });
});
