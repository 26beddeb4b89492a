import { TransactGetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey } from "../../core/auth/keys.ts";
import { keys } from "../../core/db/keys.ts";
import type { Deps } from "../../core/deps.ts";
import { getJobItem, type JobItem } from "../../core/jobs/jobs.ts";
import { createCluster, createOrganization, createProject } from "../../core/orgs/orgs.ts";
import { acquireSlot, getLock, releaseLock } from "../../core/jobs/locks.ts";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import { runClaimed } from "../../core/worker/lifecycle.ts";
import { workerOptions, type WorkerOptions } from "../../core/worker/options.ts";
import { lockResource, type JobRunner } from "../../core/worker/runner.ts";
import { startWorkerLoop } from "../../local/loops.ts";
import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { scanTable } from "../hardening/support.ts";
import { CapturingLogger, fastOptions, isSettled, postBackup, waitFor } from "./support.ts";

/**
 * Jobs that cannot run yet (their database locked by another job, their cluster at its job cap)
 * wait their turn: recorded as waiters, woken by the release, never claimed and handed back. Real
 * parts throughout: several worker loops on the local queue, pg_dump on the test PostgreSQL.
 */
const logLines: string[] = [];
let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv({ log: new CapturingLogger(logLines, { serviceName: "capydb-backups", logLevel: "INFO" }) });
});
afterAll(async () => env?.cleanup());

/**
 * The jobs in state running at one instant: one transactional read of them all (separate reads
 * would count a job that finished and the one that took its slot just after as running together).
 */
async function runningNow(jobIds: string[]): Promise<string[]> {
  const res = await env.deps.ddb.send(
    new TransactGetCommand({ TransactItems: jobIds.map((id) => ({ Get: { TableName: env.deps.table, Key: keys.job(id) } })) }),
  );
  return (res.Responses ?? []).flatMap((r) => (r.Item?.state === "running" ? [String(r.Item.id)] : []));
}

/** `loops` worker loops (function instances) of `concurrency` each, until every job settled; samples the running jobs meanwhile. */
async function runAll(jobIds: string[], options: Partial<WorkerOptions>, loops = 3, concurrency = 3) {
  const running = new Set<string>();
  let maxRunning = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const now = await runningNow(jobIds);
      maxRunning = Math.max(maxRunning, now.length);
      for (const id of now) running.add(id);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const dumping = new Set<string>();
  let maxDumping = 0;
  const hooks = {
    onDumpStart: (id: string) => {
      dumping.add(id);
      maxDumping = Math.max(maxDumping, dumping.size);
    },
    onDumpEnd: (id: string) => void dumping.delete(id),
  };
  const workers = Array.from({ length: loops }, (_, i) => {
    const deps: Deps = { ...env.deps, workerId: uniq(`turns-${i}`) };
    return startWorkerLoop(deps, createWorkerHandler(deps, { ...fastOptions, ...options, hooks }), { concurrency, batchSize: 5, waitSeconds: 1 });
  });
  try {
    const settled = await waitFor(
      "every job to settle",
      async () => {
        const all = await Promise.all(jobIds.map((id) => getJobItem(env.deps, id)));
        return all.every(isSettled) ? (all as JobItem[]) : undefined;
      },
      240_000,
    );
    return { settled, maxRunning, maxDumping, sampledRunning: running.size };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    sampling = false;
    await sampler;
  }
}

const linesOf = (jobId: string, message: string) => logLines.filter((l) => l.includes(jobId) && l.includes(`"message":"${message}"`));

async function tinyDatabase(rows: number): Promise<string> {
  const db = await env.createDatabase({ prefix: "turn" });
  await env.query(db, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, ${rows}) g`);
  return db;
}

describe("a job whose database is locked by another job", () => {
  it("waits its turn and is woken by the release: each job claimed once, no attempt spent on waiting", async () => {
    // prepare: five backups of one database, requested together; nine workers could take them at once
    const tenant: Tenant = await env.seedTenant({ database: await tinyDatabase(2000) });
    const jobs: JobItem[] = [];
    for (let i = 0; i < 5; i++) jobs.push(await postBackup(env, tenant));

    // act
    const { settled, maxDumping } = await runAll(
      jobs.map((j) => j.id),
      // No cluster cap here, and a safety net far away: only the releases can wake the waiters.
      { clusterJobCap: 0, waitRecheckMs: 10 * 60_000 },
    );

    // assess: all completed on their first attempt, one at a time, without polling the lock
    expect(settled.map((j) => [j.state, j.attempts])).toEqual(jobs.map(() => ["completed", 1]));
    expect(maxDumping, "one dump of the database at a time").toBe(1);
    for (const j of jobs) expect(linesOf(j.id, "job claimed"), `claims of ${j.id}`).toHaveLength(1);
    expect(logLines.filter((l) => l.includes('"message":"job waits its turn"')).length, "jobs waited").toBeGreaterThan(0);
    expect(logLines.filter((l) => l.includes('"message":"job woken: its turn came"')).length, "releases woke them").toBeGreaterThan(0);
    const items = await scanTable(env.deps);
    expect(items.filter((i) => i.item_type === "waiter" || i.item_type === "lock")).toEqual([]);
  }, 300_000);
});

describe("a cluster at its job cap", () => {
  it("30 jobs on one cluster never run more than the cap at once, and all complete", async () => {
    // prepare: one cluster, ten projects on it, three backups each (30 jobs); nine workers
    const CAP = 3;
    const org = await createOrganization(env.deps, { name: uniq("org") });
    const cluster = await createCluster(env.deps, { name: uniq("cls"), url: env.infra.postgresUrl, insecure_tls: true }); // the test PostgreSQL serves no TLS
    const { key } = await createApiKey(env.deps, { organization_id: org.id, name: "k", scopes: ["backups:read", "backups:write", "jobs:read"] });
    const tenants: Tenant[] = [];
    for (let i = 0; i < 10; i++) {
      const database = await tinyDatabase(500 + i);
      const project = await createProject(env.deps, { organization_id: org.id, cluster_id: cluster.id, name: uniq("prj"), database_name: database });
      tenants.push({ organizationId: org.id, clusterId: cluster.id, projectId: project.id, database, key: async () => key });
    }
    const jobs = await Promise.all(tenants.flatMap((t) => [0, 1, 2].map(() => postBackup(env, t))));
    expect(jobs).toHaveLength(30);

    // act
    const { settled, maxRunning, maxDumping } = await runAll(
      jobs.map((j) => j.id),
      { clusterJobCap: CAP, waitRecheckMs: 10 * 60_000 },
    );

    // assess
    expect(settled.filter((j) => j.state !== "completed").map((j) => ({ id: j.id, state: j.state, error: j.error }))).toEqual([]);
    expect(maxRunning, "jobs running on the cluster at once").toBeLessThanOrEqual(CAP);
    expect(maxDumping, "dumps on the cluster at once").toBeLessThanOrEqual(CAP);
    // The cap is what held them back: jobs did run side by side (the 100 ms sampler of job states may miss short jobs; the dump hooks do not).
    expect(maxDumping, "dumps on the cluster side by side").toBeGreaterThan(1);
    expect(
      settled.every((j) => j.attempts === 1),
      "waiting spent no attempt",
    ).toBe(true);
    expect(
      logLines.some((l) => l.includes('"message":"job waits its turn"') && l.includes(`cluster:${cluster.id}`)),
      "jobs waited for a slot",
    ).toBe(true);
    const items = await scanTable(env.deps);
    expect(items.filter((i) => i.item_type === "waiter" || i.item_type === "lock")).toEqual([]);
  }, 300_000);
});

describe("two deliveries of one job's message at the same moment", () => {
  it("the one that loses the claim leaves the turn to the running attempt: its database lock and cluster slot stay held until it ends", async () => {
    // prepare: a cap of one slot; a job, read by both deliveries before either claims it
    const o = workerOptions({ ...fastOptions, clusterJobCap: 1, waitRecheckMs: 10 * 60_000 });
    const tenant = await env.seedTenant({ database: await tinyDatabase(10) });
    const read = (await getJobItem(env.deps, (await postBackup(env, tenant)).id))!;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const runner: JobRunner = {
      noun: "backup",
      attempt: async () => {
        await finished;
        return { status: "completed", ack: true };
      },
    };
    const slotFree = async () => {
      const slot = await acquireSlot(env.deps, tenant.clusterId, "another-job#1", 1, 60_000);
      if (slot) await releaseLock(env.deps, slot, "another-job#1");
      return slot !== undefined;
    };

    // act: the first delivery claims and runs; the second, from the same read, takes the same turn and loses the claim
    const first = runClaimed({ ...env.deps, workerId: "first" }, runner, read, undefined, o);
    await waitFor("the first delivery to run the job", async () => (await getJobItem(env.deps, read.id))?.state === "running");
    const second = await runClaimed({ ...env.deps, workerId: "second" }, runner, read, undefined, o);

    // assess: while the attempt runs, its turn is held; when it ends, it is given back
    expect(second).toMatchObject({ status: "ignored", reason: "claimed by another worker" });
    expect(await getLock(env.deps, lockResource(read)), "the database lock").toMatchObject({ owner: `${read.id}#1` });
    expect(await slotFree(), "a slot of the cluster is free while the job runs").toBe(false);
    finish();
    expect(await first).toMatchObject({ status: "completed" });
    expect(await getLock(env.deps, lockResource(read)), "the database lock after the attempt").toBeUndefined();
    expect(await slotFree(), "a slot of the cluster is free after the attempt").toBe(true);
  }, 120_000);
});
