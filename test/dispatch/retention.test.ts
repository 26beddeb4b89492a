import type { TestEnv } from "../support/env.ts";
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { freshEnvs, tick, withClock } from "./support.ts";
import { getBackup, newBackupItem, type BackupItem } from "../../core/backups/backups.ts";
import { backupExpiryIndex, sweepExpiredBackups } from "../../core/backups/retention.ts";
import { keys } from "../../core/db/keys.ts";
import { iso } from "../../core/deps.ts";
import { newId } from "../../core/ids.ts";
import { listJobs } from "../../core/jobs/jobs.ts";
import { scanTable } from "../hardening/support.ts";
import type { Project } from "../../core/orgs/orgs.ts";

const freshEnv = freshEnvs();

const DAY = 86_400_000;
const NOW = new Date("2026-11-26T02:00:00Z");
const daysAgo = (n: number) => new Date(NOW.getTime() - n * DAY);

let seq = 0;
async function project(env: TestEnv): Promise<Project> {
  seq++;
  const p: Project = {
    type: "project",
    id: newId("project"),
    organization_id: "org_test",
    cluster_id: "cls_test",
    name: `p${seq}`,
    database_name: `db_${seq}`,
    created_at: "2026-10-01T00:00:00Z",
  };
  await env.deps.ddb.send(new PutCommand({ TableName: env.deps.table, Item: { ...keys.project(p.id), ...p } }));
  return p;
}

/**
 * (Create them oldest first: ids are monotonic ULIDs, so creation order is their sort order.)
 * A finished backup as the worker leaves it (in the expiry index when it has an artifact), with
 * its object in the bucket unless `object: false`.
 */
async function backup(
  env: TestEnv,
  p: Project,
  o: { createdDaysAgo: number; retentionDays: number; state?: "completed" | "failed"; verified?: boolean; object?: boolean },
): Promise<BackupItem> {
  const state = o.state ?? "completed";
  const verified = o.verified ?? state === "completed";
  const b: BackupItem = {
    ...newBackupItem(p, daysAgo(o.createdDaysAgo), { jobId: newId("job"), retentionDays: o.retentionDays, label: "scheduled", scheduleId: null }),
    state,
    verification_state: verified ? "verified" : "failed",
    verified_at: verified ? iso(daysAgo(o.createdDaysAgo)) : null,
    verification_error: verified ? null : "restore failed",
    size_bytes: 4,
  };
  await env.deps.ddb.send(new PutCommand({ TableName: env.deps.table, Item: { ...keys.backup(p.id, b.id), ...b, ...backupExpiryIndex(b) } }));
  if (o.object ?? true) await env.deps.s3.send(new PutObjectCommand({ Bucket: env.deps.bucket, Key: b.backup_key, Body: "dump" }));
  return b;
}

async function objectExists(env: TestEnv, key: string): Promise<boolean> {
  try {
    await env.deps.s3.send(new HeadObjectCommand({ Bucket: env.deps.bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

describe("retention", () => {
  it("deletes exactly the expired artifacts, marks them expired, keeps the newest verified backup, tolerates a missing object", async () => {
    // prepare
    const env = await freshEnv();
    const p = await project(env);
    const oldest = await backup(env, p, { createdDaysAgo: 20, retentionDays: 14 }); // expired
    const gone = await backup(env, p, { createdDaysAgo: 19, retentionDays: 14, object: false }); // expired, object already gone
    const failed = await backup(env, p, { createdDaysAgo: 18, retentionDays: 14, state: "failed" }); // expired, unverified artifact
    const edge = await backup(env, p, { createdDaysAgo: 14, retentionDays: 14 }); // expires exactly now: not past it
    const recent = await backup(env, p, { createdDaysAgo: 3, retentionDays: 14 }); // not expired: the newest verified
    // A project whose backups have been failing: its only verified backup is expired, but kept.
    const q = await project(env);
    const lastGood = await backup(env, q, { createdDaysAgo: 30, retentionDays: 14 });
    const newerFailed = await backup(env, q, { createdDaysAgo: 20, retentionDays: 14, state: "failed" });

    // act
    const r = await tick(env, NOW);

    // assess
    expect(r.retention).toMatchObject({ read: 5, deleted: 4, held: 1, failed: 0, busy: 0 });
    for (const b of [oldest, gone]) expect(await getBackup(env.deps, p.id, b.id)).toMatchObject({ state: "expired", verification_state: "verified" });
    expect(await getBackup(env.deps, p.id, failed.id)).toMatchObject({ state: "failed" });
    expect(await getBackup(env.deps, q.id, newerFailed.id)).toMatchObject({ state: "failed" });
    for (const b of [recent, edge]) expect(await getBackup(env.deps, p.id, b.id)).toMatchObject({ state: "completed" });
    expect(await getBackup(env.deps, q.id, lastGood.id)).toMatchObject({ state: "completed" });
    for (const b of [oldest, failed, newerFailed]) expect(await objectExists(env, b.backup_key), b.id).toBe(false);
    for (const b of [recent, edge, lastGood]) expect(await objectExists(env, b.backup_key), b.id).toBe(true);

    // Every deletion is a completed project.backup_delete job in its project's job list.
    const jobsP = (await listJobs(env.deps, p.id, 25)).items;
    expect(jobsP.map((j) => [j.type, j.state, j.backup_id, j.attempts, j.error]).sort()).toEqual(
      [oldest, gone, failed].map((b) => ["project.backup_delete", "completed", b.id, 1, null]).sort(),
    );
    expect(jobsP.every((j) => j.completed_at === iso(NOW) && j.claimed_by?.startsWith("dispatcher:"))).toBe(true);
    expect((await listJobs(env.deps, q.id, 25)).items.map((j) => [j.type, j.state, j.backup_id])).toEqual([
      ["project.backup_delete", "completed", newerFailed.id],
    ]);

    // Idempotent: the next ticks find nothing more to do (the held one is re-checked after an hour).
    const again = await tick(env, new Date(NOW.getTime() + 60_000));
    expect(again.retention).toMatchObject({ read: 1, deleted: 1 }); // `edge` is now past its expiry, and not the newest verified
    expect((await tick(env, new Date(NOW.getTime() + 120_000))).retention).toMatchObject({ read: 0, deleted: 0 });
    expect((await listJobs(env.deps, p.id, 25)).items).toHaveLength(4);
    expect(await getBackup(env.deps, p.id, recent.id)).toMatchObject({ state: "completed" });

    // Once a newer verified backup exists, the held one goes at its next check.
    await backup(env, q, { createdDaysAgo: 0, retentionDays: 14 });
    const later = await tick(env, new Date(NOW.getTime() + 61 * 60_000));
    expect(later.retention).toMatchObject({ read: 1, deleted: 1 });
    expect(await getBackup(env.deps, q.id, lastGood.id)).toMatchObject({ state: "expired" });
    expect(await objectExists(env, lastGood.backup_key)).toBe(false);
  });

  it("never deletes before expiry", async () => {
    const env = await freshEnv();
    const p = await project(env);
    const a = await backup(env, p, { createdDaysAgo: 1, retentionDays: 1 }); // expires exactly now
    await backup(env, p, { createdDaysAgo: 0, retentionDays: 1 }); // a newer verified one, so the rule does not hold `a`
    expect((await tick(env, new Date(NOW.getTime() - 1000))).retention).toMatchObject({ read: 0, deleted: 0 });
    expect((await tick(env, NOW)).retention).toMatchObject({ read: 0, deleted: 0 });
    expect((await tick(env, new Date(NOW.getTime() + 1000))).retention).toMatchObject({ read: 1, deleted: 1 });
    expect(await getBackup(env.deps, p.id, a.id)).toMatchObject({ state: "expired" });
  });

  it("a failing delete does not block the others, and is retried with backoff under one job, announced once", async () => {
    // prepare: S3 refuses to delete one key
    const env = await freshEnv();
    const p = await project(env);
    const stuck = await backup(env, p, { createdDaysAgo: 20, retentionDays: 14 });
    const others = [await backup(env, p, { createdDaysAgo: 19, retentionDays: 14 }), await backup(env, p, { createdDaysAgo: 18, retentionDays: 14 })];
    await backup(env, p, { createdDaysAgo: 1, retentionDays: 14 });
    const real = env.deps.s3;
    const flaky = {
      send: (cmd: { input: { Key?: string } }) => {
        if (cmd instanceof DeleteObjectCommand && cmd.input.Key === stuck.backup_key) {
          return Promise.reject(
            Object.assign(new Error("We encountered an internal error. Please try again."), { name: "InternalError", $metadata: { httpStatusCode: 500 } }),
          );
        }
        return real.send(cmd as never);
      },
    } as unknown as S3Client;

    // act
    const r = await tick(env, NOW, { ...env.deps, s3: flaky });

    // assess
    expect(r.retention).toMatchObject({ read: 3, deleted: 2, failed: 1 });
    for (const b of others) expect(await getBackup(env.deps, p.id, b.id)).toMatchObject({ state: "expired" });
    expect(await getBackup(env.deps, p.id, stuck.id)).toMatchObject({ state: "completed" });
    expect(await objectExists(env, stuck.backup_key)).toBe(true);
    // The job waits for its next try, saying why and when; nothing is announced yet.
    const retrying = (await listJobs(env.deps, p.id, 25)).items.find((j) => j.backup_id === stuck.id);
    expect(retrying).toMatchObject({ type: "project.backup_delete", state: "pending", retry_classification: "transient", attempts: 1 });
    expect(retrying?.error).toMatch(/could not delete the backup artifact: We encountered an internal error.*retrying after 2026-11-26T02:00:59Z/);

    // Still failing on the next tick: backs off (2 minutes), creating no job in between.
    const second = await tick(env, new Date(NOW.getTime() + 60_000), { ...env.deps, s3: flaky });
    expect(second.retention).toMatchObject({ read: 1, failed: 1 });
    expect((await tick(env, new Date(NOW.getTime() + 120_000))).retention).toMatchObject({ read: 0 });

    // S3 recovers.
    const third = await tick(env, new Date(NOW.getTime() + 181_000));
    expect(third.retention).toMatchObject({ read: 1, deleted: 1 });
    expect(await getBackup(env.deps, p.id, stuck.id)).toMatchObject({ state: "expired" });
    expect(await objectExists(env, stuck.backup_key)).toBe(false);
    // One job for the three tries, completed; one event for it (job.completed), no job.failed.
    const jobs = (await listJobs(env.deps, p.id, 25)).items.filter((j) => j.backup_id === stuck.id);
    expect(jobs.map((j) => [j.id, j.state, j.attempts, j.error])).toEqual([[retrying!.id, "completed", 3, null]]);
    const events = (await scanTable(env.deps)).filter((i) => i.item_type === "event" && JSON.stringify(i).includes(retrying!.id));
    expect(events.map((e) => e.type)).toEqual(["job.completed"]);
  });

  it("two sweeps at once delete each backup once, with one job each", async () => {
    const env = await freshEnv();
    const p = await project(env);
    const expired = await Promise.all([20, 19, 18, 17].map((d) => backup(env, p, { createdDaysAgo: d, retentionDays: 14 })));
    await backup(env, p, { createdDaysAgo: 1, retentionDays: 14 });
    const reports = await Promise.all(["a", "b", "c"].map((who) => sweepExpiredBackups(withClock(env.deps, NOW), `dispatcher:${who}`)));
    expect(reports.reduce((n, r) => n + r.deleted, 0)).toBe(4);
    expect(reports.reduce((n, r) => n + r.failed, 0)).toBe(0);
    const jobs = (await listJobs(env.deps, p.id, 25)).items;
    expect(jobs.map((j) => j.backup_id).sort()).toEqual(expired.map((b) => b.id).sort());
  });
});
