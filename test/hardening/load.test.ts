import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listBackups } from "../../core/backups/backups.ts";
import type { Deps } from "../../core/deps.ts";
import { getJobItem, type Job, type JobItem } from "../../core/jobs/jobs.ts";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import { startWorkerLoop } from "../../local/loops.ts";
import { CapturingLogger, fastOptions, isSettled, listKeys, waitFor } from "../worker/support.ts";
import { canaryClusterUrl, canarySightings, CANARY_ROLE, scanTable, throwawaysLeft } from "./support.ts";

const PROJECTS = 20;
const PER_PROJECT = 10;
/** Worker loops (each one "function instance" with its own worker id) x batches each polls in parallel. */
const LOOPS = 4;
const LOOP_CONCURRENCY = 2;

const logLines: string[] = [];
let env: TestEnv;
let server: ServerType;
let base: string;
let tenants: (Omit<Tenant, "key"> & { key: string })[] = [];
beforeAll(async () => {
  env = await createTestEnv({ log: new CapturingLogger(logLines, { serviceName: "capydb-backups", logLevel: "INFO" }) });
  const clusterUrl = await canaryClusterUrl(env);
  // Tiny databases: the point is 200 concurrent jobs, not the size of a dump.
  tenants = await Promise.all(
    Array.from({ length: PROJECTS }, async (_, i) => {
      const db = await env.createDatabase({ prefix: "load" });
      await env.query(db, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, ${10 + i}) g`);
      const t = await env.seedTenant({ database: db, clusterUrl });
      return { ...t, key: await t.key() };
    }),
  );
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: env.app().fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await env?.cleanup();
});

async function call(method: string, path: string, key: string | undefined, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = { unparsed: text.slice(0, 200) };
  }
  return { status: res.status, json };
}

/** Pairs of dumps of one database whose [start, end] intervals overlap. */
function overlappingDumps(jobs: Job[], dumps: Map<string, { start: number; end?: number }>): string[] {
  const byResource = new Map<string, { id: string; start: number; end: number }[]>();
  for (const j of jobs) {
    const d = dumps.get(j.id);
    if (!d) continue;
    const list = byResource.get(j.locked_resource!) ?? [];
    list.push({ id: j.id, start: d.start, end: d.end ?? Infinity });
    byResource.set(j.locked_resource!, list);
  }
  const overlaps: string[] = [];
  for (const list of byResource.values()) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) if (list[i]!.start < list[i - 1]!.end) overlaps.push(`${list[i - 1]!.id} and ${list[i]!.id}`);
  }
  return overlaps;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

describe("load", () => {
  const jobs: Job[] = [];

  it(`${PROJECTS * PER_PROJECT} backup requests across ${PROJECTS} projects at once: all complete, none lost or duplicated, no database dumped twice at once`, async () => {
    // prepare: several worker loops, as several function instances would be; each records when
    // it dumps which database, and a sampler watches the cluster's sessions on the way
    const dumps = new Map<string, { start: number; end?: number }>();
    const hooks = {
      onDumpStart: (jobId: string) => void dumps.set(jobId, { start: performance.now() }),
      onDumpEnd: (jobId: string) => void (dumps.get(jobId)!.end = performance.now()),
    };
    const databases = tenants.map((t) => t.database);
    let sampling = true;
    let maxSessionsPerDatabase = 0;
    let samples = 0;
    const sampler = (async () => {
      while (sampling) {
        // A dump holds two sessions on its database: the snapshot's (which also counts rows) and pg_dump's.
        const rows = await env.query<{ n: string }>(
          "postgres",
          "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1 AND datname = ANY($2) GROUP BY datname",
          [CANARY_ROLE, databases],
        );
        samples++;
        for (const r of rows) maxSessionsPerDatabase = Math.max(maxSessionsPerDatabase, Number(r.n));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const options = { ...fastOptions, hooks };
    const loops = Array.from({ length: LOOPS }, (_, i) => {
      const deps: Deps = { ...env.deps, workerId: `load-worker-${i}` };
      return startWorkerLoop(deps, createWorkerHandler(deps, options), { concurrency: LOOP_CONCURRENCY, batchSize: 5, waitSeconds: 1 });
    });

    // act: every request at once, over HTTP
    const t0 = Date.now();
    const requests = tenants.flatMap((t) =>
      Array.from({ length: PER_PROJECT }, (_, n) => call("POST", `/v1/projects/${t.projectId}/backups`, t.key, { label: `load ${n}` })),
    );
    const answers = await Promise.all(requests);
    const accepted = Date.now() - t0;
    for (const a of answers) {
      expect(a.status, JSON.stringify(a.json)).toBe(202);
      jobs.push(a.json.job);
    }
    let settled: JobItem[] = [];
    try {
      settled = await waitFor(
        "every job to settle",
        async () => {
          const all = await Promise.all(jobs.map((j) => getJobItem(env.deps, j.id)));
          if (process.env.LOAD_PROGRESS) console.log(`${seconds(Date.now() - t0)}: ${all.filter(isSettled).length} settled`);
          return all.every(isSettled) ? (all as JobItem[]) : undefined;
        },
        Number(process.env.LOAD_DEADLINE_MS ?? 360_000),
      );
    } catch (err) {
      const stuck = (await Promise.all(jobs.map((j) => getJobItem(env.deps, j.id)))).filter((j) => !isSettled(j));
      const queue = await env.deps.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: env.deps.queueUrl,
          AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
        }),
      );
      const dlq = await env.deps.sqs.send(new GetQueueAttributesCommand({ QueueUrl: env.dlqUrl, AttributeNames: ["ApproximateNumberOfMessages"] }));
      const lines = logLines.filter((l) => l.includes(stuck[0]?.id ?? "-"));
      throw new Error(
        `${String(err)}: queue ${JSON.stringify(queue.Attributes)} dlq ${JSON.stringify(dlq.Attributes)}; ${stuck.length} jobs not settled: ${JSON.stringify(stuck.slice(0, 2))}; log of the first: ${lines.join("\n")}`,
      );
    } finally {
      await Promise.all(loops.map((l) => l.stop()));
      sampling = false;
      await sampler;
    }
    const total = Date.now() - t0;
    const attempts = settled.reduce((n, j) => n + j.attempts, 0);
    // What the work itself takes: the dumps of the busiest database, one after another.
    const perDatabase = new Map<string, number>();
    for (const j of jobs) {
      const d = dumps.get(j.id);
      if (d?.end) perDatabase.set(j.locked_resource!, (perDatabase.get(j.locked_resource!) ?? 0) + (d.end - d.start));
    }
    console.log(
      `load: ${jobs.length} backup requests accepted in ${seconds(accepted)}; all settled in ${seconds(total)} ` +
        `with ${LOOPS} worker loops x ${LOOP_CONCURRENCY} (${attempts} attempts, ${samples} session samples); ` +
        `dumps of the busiest database took ${seconds(Math.max(0, ...perDatabase.values()))} end to end`,
    );

    // assess: every job completed, each with one backup of its own
    expect(new Set(jobs.map((j) => j.id)).size).toBe(PROJECTS * PER_PROJECT);
    // Jobs behind a busy database waited their turn: every claim was an attempt (none was claimed
    // and handed back, as when they polled the lock).
    const claims = logLines.filter((l) => l.includes('"message":"job claimed"')).length;
    expect(claims, "claims, one per attempt").toBe(settled.reduce((n, j) => n + j.attempts, 0));
    const notCompleted = settled.filter((j) => j.state !== "completed");
    expect(notCompleted.map((j) => ({ id: j.id, state: j.state, error: j.error, attempts: j.attempts }))).toEqual([]);
    expect(dumps.size).toBe(PROJECTS * PER_PROJECT);
    expect(overlappingDumps(jobs, dumps), "two workers dumped one database at once").toEqual([]);
    expect(maxSessionsPerDatabase, "sessions on one database (two per dump)").toBeLessThanOrEqual(2);
    expect(maxSessionsPerDatabase, "the sampler saw the dumps").toBeGreaterThan(0);
    for (const t of tenants) {
      const { items: backups } = await listBackups(env.deps, t.projectId, 100);
      const mine = settled.filter((j) => j.project_id === t.projectId);
      expect(backups.map((b) => b.id).sort()).toEqual(mine.map((j) => j.backup_id).sort());
      for (const b of backups) expect(b).toMatchObject({ state: "completed", verification_state: "verified" });
      expect((await listKeys(env.deps, `projects/${t.projectId}/`)).sort()).toEqual(backups.map((b) => b.backup_key).sort());
    }
    const items = await scanTable(env.deps);
    // One backup.completed and one job.completed per backup, written with the completion (the outbox).
    const events = items.filter((i) => i.item_type === "event");
    expect(events.filter((e) => e.type === "backup.completed")).toHaveLength(PROJECTS * PER_PROJECT);
    expect(events.filter((e) => e.type === "job.completed")).toHaveLength(PROJECTS * PER_PROJECT);
    expect(events).toHaveLength(2 * PROJECTS * PER_PROJECT);
    expect(items.filter((i) => i.item_type === "lock" || i.item_type === "waiter")).toEqual([]);
    expect(
      await throwawaysLeft(
        env,
        settled.map((j) => j.backup_id!),
      ),
    ).toEqual([]);
    const dlq = await env.deps.sqs.send(new GetQueueAttributesCommand({ QueueUrl: env.dlqUrl, AttributeNames: ["ApproximateNumberOfMessages"] }));
    expect(dlq.Attributes?.ApproximateNumberOfMessages).toBe("0");
    expect(canarySightings("log", logLines)).toEqual([]);
    expect(
      canarySightings(
        "item",
        items.map((i) => JSON.stringify(i)),
      ),
    ).toEqual([]);
  }, 420_000);

  it("500 concurrent mixed API requests: no 5xx, every error a JSON {error}", async () => {
    // prepare: reads, writes, replays, and requests that must fail, mixed
    const [a, b] = [tenants[0]!, tenants[1]!];
    const idem = uniq("idem");
    const kinds: (() => Promise<{ status: number; json: any; kind: string }>)[] = [];
    const add = (kind: string, n: number, f: (i: number) => Promise<{ status: number; json: any }>) => {
      for (let i = 0; i < n; i++) kinds.push(async () => ({ ...(await f(i)), kind }));
    };
    const pick = <T>(xs: T[], i: number) => xs[i % xs.length]!;
    add("list backups", 80, (i) => call("GET", `/v1/projects/${pick(tenants, i).projectId}/backups`, pick(tenants, i).key));
    add("list jobs", 80, (i) => call("GET", `/v1/projects/${pick(tenants, i).projectId}/jobs?limit=${1 + (i % 100)}`, pick(tenants, i).key));
    add("get job", 80, (i) => {
      const j = pick(jobs, i * 7);
      return call("GET", `/v1/jobs/${j.id}`, tenants.find((t) => t.projectId === j.project_id)!.key);
    });
    add("list schedules", 30, (i) => call("GET", `/v1/projects/${pick(tenants, i).projectId}/scheduled-backups`, pick(tenants, i).key));
    add("put schedule", 40, (i) =>
      call("PUT", `/v1/projects/${pick(tenants, i).projectId}/scheduled-backups/default`, pick(tenants, i).key, {
        cron_hour: i % 24,
        cron_minute: (i * 7) % 60,
        is_active: i % 2 === 0,
        label: `nightly ${i}`,
      }),
    );
    add("replayed post", 50, () => call("POST", `/v1/projects/${a.projectId}/backups`, a.key, { label: "once" }, { "idempotency-key": idem }));
    add("openapi", 20, () => call("GET", "/v1/openapi.json", undefined));
    add("me", 20, (i) => call("GET", "/v1/me", pick(tenants, i).key));
    add("bad key", 30, (i) => call("GET", `/v1/projects/${pick(tenants, i).projectId}/backups`, `capy_live_${"x".repeat(40)}`));
    add("other org", 30, () => call("GET", `/v1/projects/${b.projectId}/jobs`, a.key));
    add("bad body", 20, () => call("PUT", `/v1/projects/${a.projectId}/scheduled-backups/default`, a.key, "{not json"));
    add("unknown path", 20, (i) => call("DELETE", `/v1/projects/${a.projectId}/nothing-${i}`, a.key));
    expect(kinds).toHaveLength(500);

    // act
    const t0 = Date.now();
    const results = await Promise.all(kinds.map((k) => k()));
    const ms = Date.now() - t0;
    const byStatus: Record<string, number> = {};
    for (const r of results) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    console.log(`load: 500 concurrent mixed API requests answered in ${seconds(ms)}; statuses ${JSON.stringify(byStatus)}`);

    // assess
    expect(results.filter((r) => r.status >= 500).map((r) => `${r.kind}: ${r.status} ${JSON.stringify(r.json)}`)).toEqual([]);
    for (const r of results.filter((x) => x.status >= 400)) expect(Object.keys(r.json), `${r.kind}: ${JSON.stringify(r.json)}`).toEqual(["error"]);
    const replays = results.filter((r) => r.kind === "replayed post");
    expect(replays.map((r) => r.status)).toEqual(replays.map(() => 202));
    expect(new Set(replays.map((r) => r.json.job.id)).size, "one Idempotency-Key, one job").toBe(1);
    expect(results.filter((r) => r.kind === "bad key").every((r) => r.status === 401)).toBe(true);
    expect(results.filter((r) => r.kind === "other org").every((r) => r.status === 404)).toBe(true);
  });
});
