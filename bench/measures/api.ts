import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import autocannon from "autocannon";
import { spawn } from "node:child_process";
import { createApiKey } from "../../core/auth/keys.ts";
import { requestBackup } from "../../core/backups/backups.ts";
import { keys } from "../../core/db/keys.ts";
import { createCluster, createOrganization, createProject } from "../../core/orgs/orgs.ts";
import { freePort, waitFor } from "../../local/wait.ts";
import { trackChild } from "../lib/cleanup.ts";
import type { BenchContext, Check, MeasureResult } from "../lib/context.ts";
import { pool, round } from "../lib/stats.ts";

const CONNECTIONS = 50;

interface Stats {
  requests: number;
  inFlight: number;
  ddb: { calls: number; items: number; scanned: number; byOp: Record<string, { calls: number; items: number }> };
}

interface Load {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  requests: number;
  non_2xx: number;
  errors: number;
  ddb_calls_per_request?: number;
  ddb_by_op?: Record<string, number>;
}

export async function measureApi(ctx: BenchContext): Promise<MeasureResult> {
  const { deps } = ctx;
  const durationS = ctx.quick ? 4 : 10;
  const rounds = 2;

  ctx.log("api: seeding an organization, two projects, keys and 100 backups");
  const org = await createOrganization(deps, { name: `bench-org-${Date.now()}` });
  const cluster = await createCluster(deps, { name: `bench-cls-${Date.now()}`, url: ctx.infra.postgres.url, insecure_tls: true });
  const listProject = await createProject(deps, { organization_id: org.id, cluster_id: cluster.id, name: "bench-list", database_name: "postgres" });
  const postProject = await createProject(deps, { organization_id: org.id, cluster_id: cluster.id, name: "bench-post", database_name: "postgres" });
  const { key } = await createApiKey(deps, {
    organization_id: org.id,
    name: "bench",
    scopes: ["backups:read", "backups:write"],
    project_id: null,
    expires_at: null,
  });
  await pool(
    Array.from({ length: 100 }, (_, i) => i),
    8,
    async () => void (await requestBackup(deps, listProject, {})),
  );

  const port = await freePort();
  const server = trackChild(
    spawn(process.execPath, [ctx.children.api], { env: { ...ctx.childEnv, BENCH_PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] }),
  );
  let out = "";
  let err = "";
  server.stdout!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  server.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        if (server.exitCode !== null) throw new Error(`api server exited: ${err}`);
        return out.includes("BENCH_READY");
      },
      { timeoutMs: 30_000, what: "the bench API server" },
    );
    const stats = async (reset: boolean): Promise<Stats> => (await (await fetch(`${base}/bench/stats${reset ? "?reset=1" : ""}`)).json()) as Stats;
    /** Waits until the server has finished every request (a load's tail outlives autocannon's stop). */
    const drain = () =>
      waitFor(async () => (await stats(false)).inFlight === 0, { timeoutMs: 60_000, what: "the API server to finish its requests", intervalMs: 50 });

    const auth = { authorization: `Bearer ${key}` };
    const targets = {
      ping: { url: `${base}/bench/ping` },
      list: { url: `${base}/v1/projects/${listProject.id}/backups`, headers: auth },
      create: {
        url: `${base}/v1/projects/${postProject.id}/backups`,
        method: "POST" as const,
        headers: { ...auth, "content-type": "application/json" },
        body: "{}",
      },
    };
    // Sanity: the list answers 100 backups.
    const check = await fetch(targets.list.url, { headers: auth });
    const listed = ((await check.json()) as { backups?: unknown[] }).backups?.length;
    if (check.status !== 200 || listed !== 100) throw new Error(`list answered ${check.status} with ${listed} backups, expected 200 with 100`);

    const fire = async (name: keyof typeof targets, seconds: number): Promise<Load> => {
      await drain();
      await stats(true);
      const r = await autocannon({ ...targets[name], connections: CONNECTIONS, duration: seconds });
      await drain();
      const s = await stats(true);
      const load: Load = {
        rps: r.requests.average,
        p50_ms: r.latency.p50,
        p99_ms: r.latency.p99,
        requests: r.requests.total,
        non_2xx: r.non2xx,
        errors: r.errors + r.timeouts,
      };
      if (name !== "ping" && s.requests > 0) {
        load.ddb_calls_per_request = s.ddb.calls / s.requests;
        load.ddb_by_op = Object.fromEntries(Object.entries(s.ddb.byOp).map(([op, c]) => [op, round(c.calls / s.requests, 3)]));
      }
      return load;
    };

    /**
     * The store's own ceiling: the list's Query (same partition, 100 items) sent straight from this
     * process at the same concurrency, through the same local endpoint, no HTTP server in between.
     * When the list's req/s is close to this, the stand-in, not the service, is what limits it.
     */
    const storeQuery = async (seconds: number) => {
      const until = performance.now() + seconds * 1000;
      let done = 0;
      const latencies: number[] = [];
      await Promise.all(
        Array.from({ length: CONNECTIONS }, async () => {
          while (performance.now() < until) {
            const t = performance.now();
            await deps.ddb.send(
              new QueryCommand({
                TableName: deps.table,
                KeyConditionExpression: "pk = :p AND begins_with(sk, :b)",
                ExpressionAttributeValues: { ":p": keys.project(listProject.id).pk, ":b": keys.backupPrefix },
                ScanIndexForward: false,
                Limit: 1000,
              }),
            );
            latencies.push(performance.now() - t);
            done++;
          }
        }),
      );
      latencies.sort((a, b) => a - b);
      return {
        rps: done / seconds,
        p50_ms: latencies[Math.floor(latencies.length * 0.5)] ?? NaN,
        p99_ms: latencies[Math.floor(latencies.length * 0.99)] ?? NaN,
      };
    };

    ctx.log("api: warm-up (JIT, key cache)");
    for (const name of ["ping", "list", "create"] as const) await fire(name, 2);

    const results: Record<"ping" | "list" | "create", Load[]> = { ping: [], list: [], create: [] };
    // Exact DynamoDB calls per request (key cache warm): 20 sequential requests, nothing in flight
    // at either end of the count. The figures under load are averages over a run's edges.
    const exactCalls = async (name: "list" | "create") => {
      const t = targets[name];
      await drain();
      await stats(true);
      for (let i = 0; i < 20; i++) {
        const res = await fetch(t.url, { method: "method" in t ? t.method : "GET", headers: t.headers, body: "body" in t ? t.body : undefined });
        await res.arrayBuffer();
      }
      const s = await stats(true);
      return { perRequest: s.ddb.calls / 20, byOp: Object.fromEntries(Object.entries(s.ddb.byOp).map(([op, c]) => [op, c.calls / 20])) };
    };
    const listCalls = await exactCalls("list");
    const createCalls = await exactCalls("create");
    ctx.log(
      `api: DynamoDB calls per request, key cache warm: list ${listCalls.perRequest} ${JSON.stringify(listCalls.byOp)}, create ${createCalls.perRequest} ${JSON.stringify(createCalls.byOp)}`,
    );

    const store: { rps: number; p50_ms: number; p99_ms: number }[] = [];
    await drain();
    await storeQuery(2);
    for (let i = 0; i < rounds; i++) {
      await drain();
      const sq = await storeQuery(durationS);
      store.push(sq);
      ctx.log(`api: DynamoDB Local Query ceiling round ${i + 1}: ${round(sq.rps, 0)} queries/s, p50 ${round(sq.p50_ms, 1)} ms, p99 ${round(sq.p99_ms, 1)} ms`);
      for (const name of ["ping", "list", "create"] as const) {
        const l = await fire(name, durationS);
        results[name].push(l);
        ctx.log(
          `api: ${name} round ${i + 1}: ${round(l.rps, 0)} req/s, p50 ${l.p50_ms} ms, p99 ${l.p99_ms} ms, non-2xx ${l.non_2xx}, errors ${l.errors}` +
            (l.ddb_calls_per_request !== undefined ? `, ${round(l.ddb_calls_per_request, 2)} DynamoDB calls/req` : ""),
        );
      }
    }
    // Each figure: the mean of the rounds (the rounds are interleaved, so drift hits all routes alike).
    const avg = (ls: Load[]): Load => {
      const m = (f: (l: Load) => number) => ls.reduce((n, l) => n + f(l), 0) / ls.length;
      const out: Load = {
        rps: round(
          m((l) => l.rps),
          1,
        ),
        p50_ms: round(
          m((l) => l.p50_ms),
          2,
        ),
        p99_ms: round(
          m((l) => l.p99_ms),
          2,
        ),
        requests: ls.reduce((n, l) => n + l.requests, 0),
        non_2xx: ls.reduce((n, l) => n + l.non_2xx, 0),
        errors: ls.reduce((n, l) => n + l.errors, 0),
      };
      if (ls[0]?.ddb_calls_per_request !== undefined) {
        out.ddb_calls_per_request = round(
          m((l) => l.ddb_calls_per_request ?? 0),
          3,
        );
        out.ddb_by_op = ls.at(-1)!.ddb_by_op;
      }
      return out;
    };
    const ping = avg(results.ping);
    const list = avg(results.list);
    const create = avg(results.create);
    const listRatio = ping.rps / list.rps;
    const storeRps = store.reduce((n, x) => n + x.rps, 0) / store.length;
    const storeP99 = store.reduce((n, x) => n + x.p99_ms, 0) / store.length;
    const createRatio = ping.rps / create.rps;
    const checks: Check[] = [
      { key: "api.list.ddb_calls", value: listCalls.perRequest, target: "<= 2", pass: listCalls.perRequest <= 2 },
      {
        key: "api.errors",
        value: list.non_2xx + list.errors + create.non_2xx + create.errors,
        target: "== 0 (non-2xx + socket errors)",
        pass: list.non_2xx + list.errors + create.non_2xx + create.errors === 0,
      },
    ];
    const pf = (c: Check) => (c.pass ? "PASS" : "FAIL");
    return {
      figures: {
        api: {
          connections: CONNECTIONS,
          duration_s: durationS,
          rounds,
          backups_in_list: 100,
          ping,
          store_query_ceiling: { rps: round(storeRps, 1), p99_ms: round(storeP99, 1), list_rps_share: round(list.rps / storeRps, 2) },
          list: {
            ...list,
            ratio: round(listRatio, 2),
            ddb_calls: listCalls.perRequest,
            ddb_calls_by_op: listCalls.byOp,
            p99_ratio: round(list.p99_ms / ping.p99_ms, 2),
          },
          create: {
            ...create,
            ratio: round(createRatio, 2),
            ddb_calls: createCalls.perRequest,
            ddb_calls_by_op: createCalls.byOp,
            p99_ratio: round(create.p99_ms / ping.p99_ms, 2),
          },
          rounds_raw: results,
        },
      },
      checks,
      rows: [
        [
          "api GET /backups (100)",
          `${list.rps} req/s, p50 ${list.p50_ms} / p99 ${list.p99_ms} ms`,
          `ping ${ping.rps} req/s, p99 ${ping.p99_ms} ms`,
          `${round(listRatio, 2)}x`,
          "(report)",
          "",
        ],
        [
          "api list's Query alone",
          `${round(storeRps, 1)} queries/s, p99 ${round(storeP99, 1)} ms`,
          "(DynamoDB Local ceiling)",
          `list = ${round(list.rps / storeRps, 2)} of it`,
          "(report)",
          "",
        ],
        [
          "api POST /backups",
          `${create.rps} req/s, p50 ${create.p50_ms} / p99 ${create.p99_ms} ms`,
          `ping ${ping.rps} req/s`,
          `${round(createRatio, 2)}x`,
          "(report)",
          "",
        ],
        [
          "api DynamoDB calls/req",
          `list ${listCalls.perRequest}, create ${createCalls.perRequest} (under load: ${list.ddb_calls_per_request}, ${create.ddb_calls_per_request})`,
          "",
          "",
          "list <= 2",
          pf(checks[0]!),
        ],
        ["api errors", `${checks[1]!.value}`, "", "", "0", pf(checks[1]!)],
      ],
    };
  } finally {
    if (server.exitCode === null) {
      server.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 200));
      if (server.exitCode === null) server.kill("SIGKILL");
    }
  }
}
