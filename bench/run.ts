/**
 * `npm run bench`: the service's speed and memory targets (docs/benchmarks.md), each measured against a
 * baseline run in the same invocation, on stand-ins the bench starts itself (DynamoDB Local,
 * fauxqs, PostgreSQL 15) and stops again, also on failure and Ctrl-C. Prints a table and writes
 * bench/results.json. `BENCH_QUICK=1` runs smaller sizes (said so in the output);
 * `npm run bench -- dump api` runs some measures only (coldstart, api, dispatch, dump, wal);
 * `--repeat N` runs N rounds of the dump comparison (dump.ratio is then the median of the rounds).
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { loadConfig } from "../core/config.ts";
import { createDeps } from "../core/deps.ts";
import { provision, startInfra } from "../local/stack.ts";
import { freePort } from "../local/wait.ts";
import { installSignalHandlers, onCleanup, runCleanup } from "./lib/cleanup.ts";
import { buildChildren, root } from "./lib/children.ts";
import type { BenchContext, Check, MeasureResult } from "./lib/context.ts";
import { round } from "./lib/stats.ts";
import { measureApi } from "./measures/api.ts";
import { measureColdStart } from "./measures/coldstart.ts";
import { measureDispatch } from "./measures/dispatch.ts";
import { measureDump } from "./measures/dump.ts";
import { measurePitr } from "./measures/pitr.ts";
import { measureWal } from "./measures/wal.ts";

const measures = {
  coldstart: measureColdStart,
  api: measureApi,
  dispatch: measureDispatch,
  dump: measureDump,
  wal: measureWal,
  pitr: measurePitr,
} as const;
type MeasureName = keyof typeof measures;

/** The keys the issue names, in its order: results.json's `summary` holds exactly these. */
const STABLE_KEYS = [
  "dump.ratio",
  "dump.vs_peer",
  "dump.artifact_vs_peer",
  "dump.source_reads_ratio",
  "backup.verified_ratio",
  "restore.ratio",
  "dump.peak_rss_mb",
  "verify.ratio",
  "api.list.rps",
  "api.list.p99_ms",
  "api.list.ratio",
  "api.list.ddb_calls",
  "dispatch.items_read",
  "dispatch.ratio",
  "bundle.api_kb",
  "bundle.worker_kb",
  "coldstart.api_ratio",
  "wal.lag_p50_s",
  "wal.lag_p99_s",
  "wal.stored_per_raw",
  "wal.receiver_rss_growth",
  "basebackup.ratio",
  "pitr.ratio",
  "pitr.s_per_db_gb",
  "pitr.replay_s_per_wal_gb",
  "cli.help_over_node_ms",
] as const;

function machine() {
  let pg = "unknown";
  try {
    pg = execFileSync("/usr/lib/postgresql/15/bin/postgres", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    // reported as unknown
  }
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memory_gb: round(totalmem() / 1024 ** 3, 1),
    kernel: release(),
    node: process.version,
    postgres: pg,
    loadavg_at_start: loadavg().map((x) => round(x, 2)),
  };
}

function get(obj: unknown, dotted: string): unknown {
  return dotted.split(".").reduce<unknown>((o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined), obj);
}

function table(rows: string[][]): string {
  const head = ["measure", "figure", "baseline (same run)", "ratio", "target", "result"];
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (c ?? "").padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

async function main(): Promise<number> {
  installSignalHandlers();
  const quick = process.env.BENCH_QUICK === "1";
  const args = process.argv.slice(2);
  let repeat = 1;
  const named: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--repeat(?:=(\d+))?$/.exec(a);
    if (m) {
      repeat = Number(m[1] ?? args[++i]);
      if (!Number.isInteger(repeat) || repeat < 1) throw new Error("--repeat takes a whole number of rounds, e.g. --repeat 3");
    } else named.push(a);
  }
  const selected = (named.length ? named : Object.keys(measures)) as MeasureName[];
  for (const m of selected) if (!(m in measures)) throw new Error(`unknown measure ${m}; known: ${Object.keys(measures).join(", ")}`);
  const started = Date.now();
  const machineAtStart = machine();
  const log = (msg: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${msg}`);
  log(
    `bench: ${quick ? "QUICK run (BENCH_QUICK=1): smaller databases and schedule counts, shorter loads; not the issue's sizes" : "full run"}; measures: ${selected.join(", ")}`,
  );

  const tmp = mkdtempSync(path.join(tmpdir(), "capydb-bench-"));
  chmodSync(tmp, 0o755); // the postgres user must reach its data directory
  const removeTmp = () => rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  onCleanup("temp dir", removeTmp);
  // A step interrupted by Ctrl-C (an esbuild build, say) may still write into it after the cleanup.
  process.once("exit", () => {
    try {
      removeTmp();
    } catch {
      // nothing more to do at exit
    }
  });

  log("bench: starting DynamoDB Local, fauxqs and PostgreSQL");
  const ports = { aws: await freePort(), dynamodb: await freePort(), fauxqs: await freePort(), postgres: await freePort() };
  // Registered before it settles: a Ctrl-C during the start waits for it, then stops what started.
  const starting = startInfra({ dir: path.join(tmp, "infra"), persist: false, ports, postgresPassword: randomBytes(12).toString("hex") });
  onCleanup("stand-ins", async () => (await starting.catch(() => undefined))?.stop());
  const infra = await starting;
  const names = { table: "bench", queue: "bench-jobs", bucket: "bench-backups" };
  const resources = await provision(infra, names);
  const childEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_REGION: "us-east-1",
    CAPYDB_AWS_ENDPOINT: infra.endpoint,
    CAPYDB_TABLE: names.table,
    CAPYDB_QUEUE_URL: resources.queueUrl,
    CAPYDB_DLQ_URL: resources.dlqUrl,
    CAPYDB_BUCKET: names.bucket,
    CAPYDB_SECRET_KEY: randomBytes(32).toString("base64"),
    CAPYDB_WORKER_ID: "bench-worker",
    LOG_LEVEL: "ERROR",
  };
  const deps = createDeps(loadConfig(childEnv));
  onCleanup("AWS clients", () => {
    deps.ddb.destroy();
    deps.s3.destroy();
    deps.sqs.destroy();
  });
  const pgUrl = new URL(infra.postgres.url);
  const ctx: BenchContext = {
    quick,
    repeat,
    tmp,
    infra,
    childEnv,
    deps,
    conn: {
      host: pgUrl.hostname,
      port: Number(pgUrl.port),
      user: infra.postgres.user,
      password: infra.postgres.password,
      adminDatabase: "postgres",
      sslmode: "disable",
      insecureTls: true,
    },
    children: await buildChildren(path.join(tmp, "children")),
    log,
  };

  const results: Record<string, unknown> = {};
  const checks: Check[] = [];
  const rows: string[][] = [];
  const failures: string[] = [];
  for (const name of selected) {
    log(`bench: measure ${name}`);
    let r: MeasureResult;
    try {
      r = await measures[name](ctx);
    } catch (err) {
      failures.push(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      log(`bench: measure ${name} FAILED: ${String(err)}`);
      rows.push([name, "FAILED", "", "", "", "FAIL"]);
      continue;
    }
    Object.assign(results, r.figures);
    checks.push(...r.checks);
    rows.push(...r.rows);
  }

  const summary = Object.fromEntries(STABLE_KEYS.map((k) => [k, get(results, k) ?? null]));
  const out = {
    generated_at: new Date().toISOString(),
    quick,
    measures: selected,
    duration_s: round((Date.now() - started) / 1000, 0),
    machine: { ...machineAtStart, loadavg_at_end: loadavg().map((x) => round(x, 2)) },
    summary,
    checks,
    failures,
    ...results,
  };
  const file = path.join(root, "bench", "results.json");
  writeFileSync(file, JSON.stringify(out, null, 2) + "\n");

  console.log(
    `\nCapyDB backups bench (${quick ? "QUICK: BENCH_QUICK=1, smaller sizes" : "full"}) on ${out.machine.cores} x ${out.machine.cpu}, ${out.machine.memory_gb} GB, node ${out.machine.node}; load average ${out.machine.loadavg_at_start[0]} at start, ${out.machine.loadavg_at_end[0]} at end\n`,
  );
  console.log(table(rows));
  const failed = checks.filter((c) => !c.pass);
  console.log(`\ntargets: ${checks.length - failed.length} passed, ${failed.length} failed${failed.length ? ` (${failed.map((c) => c.key).join(", ")})` : ""}`);
  if (failures.length) console.log(`measures that could not run: ${failures.length}\n${failures.join("\n")}`);
  console.log(`wrote ${path.relative(root, file)} in ${out.duration_s} s`);
  // The bench reports missed targets (exit 0); it fails only when a measure could not run.
  return failures.length ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await runCleanup();
}
process.exit(code);
