import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import pg from "pg";
import { pickPgTools } from "../../core/worker/pgtools.ts";
import { trackChild } from "../lib/cleanup.ts";
import { runChild } from "../lib/children.ts";
import type { BenchContext, Check, MeasureResult } from "../lib/context.ts";
import { mb, median, round } from "../lib/stats.ts";

const PGBENCH = "/usr/lib/postgresql/15/bin/pgbench";

interface DumpOut {
  ms: number;
  /** CPU the worker process used during the dump (hashing, HTTP, streams). */
  cpuMs: number;
  sizeBytes: number;
  sha256: string;
  rowCounts: Record<string, number>;
  pgDumpVersion: string;
  vmHwmKb: number;
  partSizeBytes: number;
  uploadQueueSize: number;
  s3: Record<string, { calls: number; ms: number; lastEndMs: number }>;
}
interface VerifyOut {
  ms: number;
  restoreMs: number;
  vmHwmKb: number;
}

/** libpq environment for the bench's own tools (pgbench, the bare pg_dump). */
function pgEnv(ctx: BenchContext, database: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    LC_ALL: "C",
    PGHOST: ctx.conn.host,
    PGPORT: String(ctx.conn.port),
    PGUSER: ctx.conn.user,
    PGPASSWORD: ctx.conn.password,
    PGDATABASE: database,
    PGSSLMODE: "disable",
    PGPASSFILE: "/dev/null",
  };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdoutFd?: number): Promise<{ ms: number }> {
  const started = performance.now();
  const child = trackChild(spawn(cmd, args, { env, stdio: ["ignore", stdoutFd ?? "ignore", "pipe"] }));
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (code === 0) resolve({ ms: performance.now() - started });
      else reject(new Error(`${cmd} ${args.join(" ")} exited with ${code ?? signal}: ${stderr.trim()}`));
    });
  });
}

async function sql<T extends pg.QueryResultRow>(ctx: BenchContext, db: string, text: string): Promise<T[]> {
  const client = new pg.Client({ host: ctx.conn.host, port: ctx.conn.port, user: ctx.conn.user, password: ctx.conn.password, database: db });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/**
 * A pgbench database of about `scale` * 15 MB: pgbench creates the tables and, after the rows are
 * in, vacuums and adds the primary keys; the rows are generated server-side like `pgbench -i -I G`
 * does, except that `filler` holds hex digits instead of blanks. pgbench's own blank filler
 * compresses about 60:1, which would leave the pipeline almost nothing to hash and upload; hex
 * compresses about 2:1, closer to real data. Returns the database's size in bytes.
 */
async function generate(ctx: BenchContext, name: string, scale: number): Promise<number> {
  await sql(ctx, "postgres", `DROP DATABASE IF EXISTS ${name}`);
  await sql(ctx, "postgres", `CREATE DATABASE ${name}`);
  const env = pgEnv(ctx, name);
  await run(PGBENCH, ["-i", "-q", "-s", String(scale), "-I", "dt"], env);
  await sql(ctx, name, `INSERT INTO pgbench_branches (bid, bbalance) SELECT g, 0 FROM generate_series(1, ${scale}) g`);
  await sql(ctx, name, `INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT g, (g - 1) / 10 + 1, 0 FROM generate_series(1, ${10 * scale}) g`);
  await sql(
    ctx,
    name,
    `INSERT INTO pgbench_accounts (aid, bid, abalance, filler)
     SELECT g, (g - 1) / 100000 + 1, 0, substr(md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text), 1, 84)
     FROM generate_series(1, ${100_000 * scale}) g`,
  );
  await run(PGBENCH, ["-i", "-q", "-s", String(scale), "-I", "vp"], env);
  const [row] = await sql<{ size: string }>(ctx, name, "SELECT pg_database_size(current_database()) AS size");
  return Number(row!.size);
}

/** The baseline: `pg_dump --format=custom > /dev/null`, same binary, same database. */
async function bareDump(ctx: BenchContext, pgDump: string, database: string): Promise<number> {
  const devnull = openSync("/dev/null", "w");
  try {
    return (await run(pgDump, ["--format=custom", "--no-password"], pgEnv(ctx, database), devnull)).ms;
  } finally {
    closeSync(devnull);
  }
}

interface DbRun {
  label: string;
  scale: number;
  dbBytes: number;
  bareMs: number[];
  pipelineMs: number[];
  peakRssKb: number[];
  sampledRssKb: number[];
  workerCpuMs: number[];
  /** CPU this process (the S3/SQS stand-in and the AWS proxy) used during each pipeline run. */
  standInCpuMs: number[];
  last: DumpOut;
  key: string;
  verify?: { ms: number; vmHwmKb: number };
}

export async function measureDump(ctx: BenchContext): Promise<MeasureResult> {
  const sizes = ctx.quick
    ? [
        { label: "small", scale: 1, reps: 2 },
        { label: "large", scale: 4, reps: 2 },
      ]
    : [
        { label: "small", scale: 7, reps: 3 },
        { label: "large", scale: 35, reps: 5 },
      ];
  const [version] = await sql<{ num: string }>(ctx, "postgres", "SELECT current_setting('server_version_num') AS num");
  const major = Math.floor(Number(version!.num) / 10000);
  const tools = await pickPgTools({ major, text: String(major) }, ctx.deps.pgBinDirs);
  const runs: DbRun[] = [];

  for (const size of sizes) {
    const db = `bench_${size.label}`;
    ctx.log(`dump: generating ${db} (pgbench -i -s ${size.scale})`);
    const t = performance.now();
    const dbBytes = await generate(ctx, db, size.scale);
    ctx.log(`dump: ${db} is ${round(mb(dbBytes), 0)} MB (generated in ${round((performance.now() - t) / 1000, 0)} s); warming up`);
    await bareDump(ctx, tools.pgDump, db); // page cache warm for both sides
    const r: DbRun = { label: size.label, scale: size.scale, dbBytes, bareMs: [], pipelineMs: [], peakRssKb: [], sampledRssKb: [], workerCpuMs: [], standInCpuMs: [], last: undefined as unknown as DumpOut, key: "" };
    for (let i = 0; i < size.reps; i++) {
      // Interleaved, so drift in the machine's load hits both sides alike.
      r.bareMs.push(await bareDump(ctx, tools.pgDump, db));
      const key = `bench/${db}/${i}.dump`;
      const cpu0 = process.cpuUsage();
      const child = await runChild<DumpOut>(ctx.children.dump, { mode: "dump", conn: ctx.conn, database: db, key }, ctx.childEnv, { timeoutMs: 20 * 60_000 });
      const cpu = process.cpuUsage(cpu0);
      r.standInCpuMs.push((cpu.user + cpu.system) / 1000);
      r.workerCpuMs.push(child.result.cpuMs);
      r.pipelineMs.push(child.result.ms);
      r.peakRssKb.push(child.result.vmHwmKb);
      r.sampledRssKb.push(child.sampledMaxRssKb);
      if (r.key) await ctx.deps.s3.send(new DeleteObjectCommand({ Bucket: ctx.deps.bucket, Key: r.key }));
      r.key = key;
      r.last = child.result;
      ctx.log(
        `dump: ${db} #${i + 1}: bare ${round(r.bareMs.at(-1)! / 1000, 1)} s, pipeline ${round(child.result.ms / 1000, 1)} s ` +
          `(${round(mb(child.result.sizeBytes), 1)} MB artifact, peak RSS ${round(child.result.vmHwmKb / 1024, 0)} MB; CPU: worker ${round(child.result.cpuMs / 1000, 1)} s, stand-ins ${round(r.standInCpuMs.at(-1)! / 1000, 1)} s; ` +
          `S3 ${Object.entries(child.result.s3).map(([op, o]) => `${op} x${o.calls} ${round(o.ms, 0)} ms`).join(", ")})`,
      );
    }
    ctx.log(`dump: verifying ${db} (pg_restore into a throwaway database + row counts)`);
    const v = await runChild<VerifyOut>(
      ctx.children.dump,
      { mode: "verify", conn: ctx.conn, key: r.key, sha256: r.last.sha256, rowCounts: r.last.rowCounts, serverMajor: major },
      ctx.childEnv,
      { timeoutMs: 30 * 60_000 },
    );
    r.verify = { ms: v.result.ms, vmHwmKb: v.result.vmHwmKb };
    ctx.log(`dump: ${db} verified in ${round(v.result.ms / 1000, 1)} s`);
    await ctx.deps.s3.send(new DeleteObjectCommand({ Bucket: ctx.deps.bucket, Key: r.key }));
    await sql(ctx, "postgres", `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    runs.push(r);
  }

  const [small, large] = runs as [DbRun, DbRun];
  /**
   * Each pipeline run follows its bare pg_dump at once, so a pair shares the machine's load of the
   * moment: the headline is the median of the pairs' ratios. The ratio of the medians and of the
   * minimums are reported beside it (on a quiet machine the three agree).
   */
  const pairRatio = (r: DbRun) => median(r.pipelineMs.map((p, i) => p / r.bareMs[i]!));
  const ratio = pairRatio(large);
  const peakRssMb = Math.max(...large.peakRssKb, ...small.peakRssKb) / 1024;
  const flatness = Math.max(...large.peakRssKb) / Math.max(...small.peakRssKb);
  const verifyRatio = large.verify!.ms / median(large.pipelineMs);
  const per = (r: DbRun) => ({
    pgbench_scale: r.scale,
    db_mb: round(mb(r.dbBytes), 1),
    artifact_mb: round(mb(r.last.sizeBytes), 1),
    bare_ms: r.bareMs.map((x) => round(x, 0)),
    pipeline_ms: r.pipelineMs.map((x) => round(x, 0)),
    bare_median_ms: round(median(r.bareMs), 0),
    pipeline_median_ms: round(median(r.pipelineMs), 0),
    ratio: round(pairRatio(r), 3),
    pair_ratios: r.pipelineMs.map((p, i) => round(p / r.bareMs[i]!, 3)),
    ratio_of_medians: round(median(r.pipelineMs) / median(r.bareMs), 3),
    ratio_of_minimums: round(Math.min(...r.pipelineMs) / Math.min(...r.bareMs), 3),
    peak_rss_mb: round(Math.max(...r.peakRssKb) / 1024, 1),
    sampled_max_rss_mb: round(Math.max(...r.sampledRssKb) / 1024, 1),
    pipeline_db_mb_per_s: round(mb(r.dbBytes) / (median(r.pipelineMs) / 1000), 1),
    bare_db_mb_per_s: round(mb(r.dbBytes) / (median(r.bareMs) / 1000), 1),
    s3_calls_last_run: r.last.s3,
    worker_cpu_median_ms: round(median(r.workerCpuMs), 0),
    stand_in_cpu_median_ms: round(median(r.standInCpuMs), 0),
    verify_ms: round(r.verify!.ms, 0),
    verify_ratio: round(r.verify!.ms / median(r.pipelineMs), 3),
    verify_db_mb_per_s: round(mb(r.dbBytes) / (r.verify!.ms / 1000), 1),
    verify_artifact_mb_per_s: round(mb(r.last.sizeBytes) / (r.verify!.ms / 1000), 1),
    verify_peak_rss_mb: round(r.verify!.vmHwmKb / 1024, 1),
  });

  const checks: Check[] = [
    { key: "dump.ratio", value: round(ratio, 3), target: "<= 1.15", pass: ratio <= 1.15 },
    { key: "dump.peak_rss_mb", value: round(peakRssMb, 1), target: "<= 256", pass: peakRssMb <= 256 },
    { key: "dump.rss_flatness", value: round(flatness, 3), target: "<= 1.20 (large/small peak)", pass: flatness <= 1.2 },
  ];
  if (!ctx.quick) {
    const big = mb(large.dbBytes) >= 500;
    checks.push({ key: "dump.large_db_mb", value: round(mb(large.dbBytes), 0), target: ">= 500", pass: big });
  }
  const s = per(small);
  const l = per(large);
  const pf = (c: Check) => (c.pass ? "PASS" : "FAIL");
  return {
    figures: {
      dump: {
        ratio: round(ratio, 3),
        peak_rss_mb: round(peakRssMb, 1),
        rss_flatness: round(flatness, 3),
        pg_dump_version: large.last.pgDumpVersion,
        part_size_mb: round(mb(large.last.partSizeBytes), 1),
        upload_queue_size: large.last.uploadQueueSize,
        small: s,
        large: l,
      },
      verify: {
        ratio: round(verifyRatio, 3),
        ms: l.verify_ms,
        dump_ms: l.pipeline_median_ms,
        db_mb_per_s: l.verify_db_mb_per_s,
        artifact_mb_per_s: l.verify_artifact_mb_per_s,
        dump_db_mb_per_s: l.pipeline_db_mb_per_s,
        peak_rss_mb: l.verify_peak_rss_mb,
        small: { ms: s.verify_ms, ratio: s.verify_ratio, db_mb_per_s: s.verify_db_mb_per_s },
      },
    },
    checks,
    rows: [
      [
        `dump ${l.db_mb} MB db`,
        `pipeline ${l.pipeline_median_ms} ms (median)`,
        `pg_dump ${l.bare_median_ms} ms (median)`,
        `${round(ratio, 2)}x (pairs; medians ${l.ratio_of_medians}x, minimums ${l.ratio_of_minimums}x)`,
        "<= 1.15x",
        pf(checks[0]!),
      ],
      [`dump ${s.db_mb} MB db`, `pipeline ${s.pipeline_median_ms} ms (median)`, `pg_dump ${s.bare_median_ms} ms (median)`, `${s.ratio}x (pairs)`, "(info)", ""],
      ["dump peak RSS", `${l.peak_rss_mb} MB (${l.db_mb} MB db)`, `${s.peak_rss_mb} MB (${s.db_mb} MB db)`, `${round(flatness, 2)}x`, "<= 256 MB, flat (<= 1.2x)", `${pf(checks[1]!)}/${pf(checks[2]!)}`],
      [
        `verify ${l.db_mb} MB db`,
        `${l.verify_ms} ms (${l.verify_db_mb_per_s} MB/s db, ${l.verify_artifact_mb_per_s} MB/s artifact)`,
        `dump ${l.pipeline_median_ms} ms (${l.pipeline_db_mb_per_s} MB/s)`,
        `${round(verifyRatio, 2)}x`,
        "(report)",
        "",
      ],
      ...(checks[3] ? [["dump db size", `${l.db_mb} MB`, "", "", ">= 500 MB", pf(checks[3])]] : []),
    ],
  };
}
