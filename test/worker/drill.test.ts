import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { DeleteCommand } from "@aws-sdk/lib-dynamodb";
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../core/db/keys.ts";
import { runTick } from "../../core/dispatch/handler.ts";
import { getJobItem, listJobs, type JobItem } from "../../core/jobs/jobs.ts";
import { enqueueJobs } from "../../core/jobs/queue.ts";
import { createCluster, getClusterConnection } from "../../core/orgs/orgs.ts";
import type { ClusterConnection } from "../../core/pg/pgconn.ts";
import { listSegments, updateArchive } from "../../core/wal/archive.ts";
import { createDrillJob, getDrill } from "../../core/wal/drills.ts";
import { startArchivedCluster, type ArchivedCluster } from "../pg/archived-cluster.ts";
import { publishArchive } from "../pg/publish-archive.ts";
import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { storedEvents } from "../support/events.ts";
import { body } from "../support/spec.ts";
import { fastOptions, runQueueUntilSettled } from "./support.ts";

/**
 * The daily drill (issue 32, item 6): the dispatcher queues one per archived cluster per day, the
 * worker restores a random time of the window from the archive in S3, copies a database into a
 * scratch database on the verification cluster, checks it, drops it, and GET .../pitr shows it.
 */
let env: TestEnv;
let src: ArchivedCluster;
let tenant: Tenant;
let verification: ClusterConnection;
let commits: Date[] = [];

beforeAll(async () => {
  env = await createTestEnv();
  src = await startArchivedCluster();
  await src.query("postgres", "CREATE DATABASE app");
  await src.query("app", "CREATE TABLE ledger (id int PRIMARY KEY, at timestamptz NOT NULL)");
  const tar = await src.baseBackup();
  await new Promise((r) => setTimeout(r, 1200));
  for (let id = 1; id <= 40; id++) {
    await src.query("app", "INSERT INTO ledger VALUES ($1, clock_timestamp())", [id]);
    await new Promise((r) => setTimeout(r, 100));
  }
  const rows = await src.query<{ at: string }>("app", "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))::text AS at FROM ledger ORDER BY id");
  commits = rows.map((r) => new Date(Number(r.at) * 1000));
  tenant = await env.seedTenant({ clusterUrl: src.server.url.replace(/\/postgres$/, "/postgres?sslmode=disable"), database: "app" });
  await publishArchive(env.deps, src, tenant.clusterId, [tar]);
  // As the receiver records it: the restorable time is a moment before a commit the archive holds
  // (its heartbeat's), so replay to any time of the window finds a commit after it.
  await updateArchive(env.deps, tenant.clusterId, { restorable_time: commits.at(-1)!.toISOString() });
  verification = await getClusterConnection(
    env.deps,
    (await createCluster(env.deps, { name: uniq("verify"), url: env.infra.postgresUrl, insecure_tls: true })).id,
  );
}, 180_000);

afterAll(async () => {
  await src?.stop();
  await env?.cleanup();
});

const at = (iso: string) => () => new Date(iso);
/** A drill job as the dispatcher queues it (its day's mark and its message). */
async function queueDrill(day: string): Promise<JobItem> {
  const job = (await createDrillJob(env.deps, tenant.clusterId, day, await getDrill(env.deps, tenant.clusterId)))!;
  await enqueueJobs(env.deps, [job.id]);
  return job;
}
const drillJobs = async (): Promise<JobItem[]> => {
  const drill = await getDrill(env.deps, tenant.clusterId);
  return drill?.queued_job_id ? [(await getJobItem(env.deps, drill.queued_job_id))!] : [];
};

/** What a drill must never leave: a scratch database, a recovery instance's directory or server process. */
async function leftovers(): Promise<{ scratch: string[]; dirs: string[]; servers: string[] }> {
  const scratch = (await env.query<{ datname: string }>("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'capydb\\_drill\\_%'")).map(
    (r) => r.datname,
  );
  let dirs: string[] = [];
  try {
    dirs = readdirSync(join(tmpdir(), "capydb-recovery")).filter((d) => d.startsWith(`r-${process.pid}-`));
  } catch {
    // no recovery ever ran here
  }
  const servers = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(`capydb-recovery/r-${process.pid}-`));
  return { scratch, dirs, servers };
}

async function pitrOf(): Promise<{ last_drill: unknown }> {
  const res = await env.app().request(`/v1/projects/${tenant.projectId}/pitr`, { headers: { authorization: `Bearer ${await tenant.key(["backups:read"])}` } });
  expect(res.status).toBe(200);
  return (await body(res)).pitr;
}

describe("the daily pitr drill", () => {
  it("the dispatcher queues one drill per archived cluster per day, after the drill time, and none before", async () => {
    const day1 = "2030-03-04";
    await runTick({ ...env.deps, now: at(`${day1}T05:59:00Z`) }, { drillAt: "06:00" });
    expect(await getDrill(env.deps, tenant.clusterId)).toBeUndefined();
    const first = await runTick({ ...env.deps, now: at(`${day1}T06:00:30Z`) }, { drillAt: "06:00" });
    expect(first.drills).toEqual({ queued: 1, failing: 0 });
    const [job] = await drillJobs();
    expect(job).toMatchObject({ type: "cluster.pitr_drill", cluster_id: tenant.clusterId, state: "pending" });
    for (const t of ["06:01:00", "12:00:00", "23:59:00"]) {
      const again = await runTick({ ...env.deps, now: at(`${day1}T${t}Z`) }, { drillAt: "06:00" });
      expect(again.drills?.queued).toBe(0);
    }
    expect((await getDrill(env.deps, tenant.clusterId))?.queued_job_id).toBe(job!.id);
    const next = await runTick({ ...env.deps, now: at("2030-03-05T07:00:00Z") }, { drillAt: "06:00" });
    expect(next.drills?.queued).toBe(1);
    const [second] = await drillJobs();
    expect(second!.id).not.toBe(job!.id);
    expect((await getDrill(env.deps, tenant.clusterId))?.queued_for).toBe("2030-03-05");

    // The service's own: in no customer's job list, not found by id, no job.* event.
    const key = await tenant.key(["jobs:read"]);
    const listed = await env.app().request(`/v1/projects/${tenant.projectId}/jobs`, { headers: { authorization: `Bearer ${key}` } });
    expect(((await body(listed)).jobs as { id: string }[]).map((j) => j.id)).not.toContain(job!.id);
    expect((await listJobs(env.deps, tenant.projectId, 50)).items.map((j) => j.id)).not.toContain(job!.id);
    const byId = await env.app().request(`/v1/jobs/${job!.id}`, { headers: { authorization: `Bearer ${key}` } });
    expect(byId.status).toBe(404);
    // These two are not run: out of the way of the next tests.
    for (const j of [job!, second!]) await env.deps.ddb.send(deleteJob(j.id));
  }, 120_000);

  it("restores a random time of the window into a scratch database on the verification cluster, checks it, drops it, and GET .../pitr shows it", async () => {
    const job = await queueDrill("2030-03-06");
    const [done] = await runQueueUntilSettled(env.deps, [job.id], { ...fastOptions, verificationServer: verification }, 180_000);
    expect(done, JSON.stringify(done)).toMatchObject({ state: "completed", type: "cluster.pitr_drill" });
    const drill = (await getDrill(env.deps, tenant.clusterId))!;
    expect(drill.last).toMatchObject({ ok: true, error: null, job_id: job.id, database: "app", checked_on: "verification_cluster" });
    // The rows the copy holds are exactly the ledger's commits at or before the drawn time.
    const t = Date.parse(drill.last!.restore_time);
    expect(drill.last!.rows).toBe(commits.filter((c) => c.getTime() <= t).length);
    expect(drill.last!.seconds).toBeGreaterThan(0);
    expect(await leftovers()).toEqual({ scratch: [], dirs: [], servers: [] });
    const pitr = await pitrOf();
    expect(pitr.last_drill).toEqual({ at: drill.last!.at, restore_time: drill.last!.restore_time, ok: true, seconds: drill.last!.seconds, error: null });
    // No customer hears of it.
    const events = await storedEvents(env.deps, {});
    expect(events.filter((e) => JSON.stringify(e.event.data).includes(job.id))).toEqual([]);
  }, 240_000);

  it("a drill of a damaged archive (a WAL object changed in S3) reports ok=false with the error, fails its job, raises the metric's figure, and leaves nothing behind", async () => {
    const last = (await listSegments(env.deps, tenant.clusterId)).at(-1)!;
    const original = await env.deps.s3.send(new GetObjectCommand({ Bucket: env.deps.bucket, Key: last.key }));
    const bytes = Buffer.from(await original.Body!.transformToByteArray());
    const changed = Buffer.from(bytes);
    changed[changed.length - 20] = changed[changed.length - 20]! ^ 0xff;
    await env.deps.s3.send(new PutObjectCommand({ Bucket: env.deps.bucket, Key: last.key, Body: changed }));
    try {
      const job = await queueDrill("2030-03-07");
      const [done] = await runQueueUntilSettled(env.deps, [job.id], { ...fastOptions, verificationServer: verification }, 180_000);
      expect(done).toMatchObject({ state: "failed", retry_classification: "permanent" });
      const drill = (await getDrill(env.deps, tenant.clusterId))!;
      expect(drill.last).toMatchObject({ ok: false, job_id: job.id });
      expect(drill.last!.error).toContain(`archived object ${last.key} is corrupt`);
      const pitr = await pitrOf();
      expect(pitr.last_drill).toMatchObject({ ok: false, restore_time: drill.last!.restore_time, error: drill.last!.error });
      expect(await leftovers()).toEqual({ scratch: [], dirs: [], servers: [] });
      // The dispatcher's figure for the alarm: this cluster's last drill failed.
      const tick = await runTick({ ...env.deps, now: at("2030-03-07T05:00:00Z") }, { drillAt: "06:00" });
      expect(tick.drills).toEqual({ queued: 0, failing: 1 });
    } finally {
      await env.deps.s3.send(new PutObjectCommand({ Bucket: env.deps.bucket, Key: last.key, Body: bytes }));
    }
  }, 240_000);
});

const deleteJob = (id: string) => new DeleteCommand({ TableName: env.deps.table, Key: keys.job(id) });
