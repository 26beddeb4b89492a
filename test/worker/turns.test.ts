import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey } from "../../core/auth/keys.ts";
import type { Deps } from "../../core/deps.ts";
import { getJobItem, type JobItem } from "../../core/jobs/jobs.ts";
import { createCluster, createOrganization, createProject } from "../../core/orgs/orgs.ts";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import type { WorkerOptions } from "../../core/worker/options.ts";
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

/** `loops` worker loops (function instances) of `concurrency` each, until every job settled; samples the running jobs meanwhile. */
async function runAll(jobIds: string[], options: Partial<WorkerOptions>, loops = 3, concurrency = 3) {
  const running = new Set<string>();
  let maxRunning = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const jobs = await Promise.all(jobIds.map((id) => getJobItem(env.deps, id)));
      const now = jobs.filter((j) => j?.state === "running");
      maxRunning = Math.max(maxRunning, now.length);
      for (const j of now) running.add(j!.id);
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
