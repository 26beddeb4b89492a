import { DeleteObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { spawn } from "node:child_process";
import { chmodSync, closeSync, createWriteStream, openSync, rmSync } from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { DEFAULT_COMPRESS_LEVEL } from "../../core/pg/dump.ts";
import { defaultWorkerOptions } from "../../core/worker/options.ts";
import { pickPgTools } from "../../core/pg/pgtools.ts";
import { trackChild } from "../lib/cleanup.ts";
import { runChild } from "../lib/children.ts";
import { type BenchContext, type Check, type MeasureResult, pgEnv } from "../lib/context.ts";
import { mb, median, round, sleep } from "../lib/stats.ts";

const PGBENCH = "/usr/lib/postgresql/15/bin/pgbench";

interface DumpOut {
  ms: number;
  /** CPU the worker process used during the dump (hashing, HTTP, streams). */
  cpuMs: number;
  sizeBytes: number;
  sha256: string;
  rowCounts: Record<string, number>;
  rowCountsFrom: string;
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
interface BackupOut {
  ms: number;
  dumpMs: number;
  restoreMs: number;
  cpuMs: number;
  sizeBytes: number;
  rowCountsFrom: string;
  vmHwmKb: number;
}
interface PeerOut {
  ms: number;
  dumpMs: number;
  uploadMs: number;
  sizeBytes: number;
}
interface RestoreOut {
  ms: number;
  vmHwmKb: number;
}

/** The source database's reads (pg_stat_database): shared-buffer blocks (hit + read) and tuples returned by scans. */
interface Reads {
  blocks: number;
  tuples: number;
}

async function dbReads(ctx: BenchContext, db: string): Promise<Reads> {
  const [r] = await sql<{ blocks: string; tuples: string }>(
    ctx,
    "postgres",
    `SELECT blks_read + blks_hit AS blocks, tup_returned AS tuples FROM pg_stat_database WHERE datname = '${db}'`,
  );
  return { blocks: Number(r!.blocks), tuples: Number(r!.tuples) };
}

/**
 * `fn`'s reads on `db`: the counters before and after, once the backends it used have exited and
 * flushed their statistics (a backend reports them at exit; the pause lets that land).
 */
async function readsDuring<T>(ctx: BenchContext, db: string, fn: () => Promise<T>): Promise<{ result: T; reads: Reads }> {
  await sleep(600);
  const before = await dbReads(ctx, db);
  const result = await fn();
  await sleep(600);
  const after = await dbReads(ctx, db);
  return { result, reads: { blocks: after.blocks - before.blocks, tuples: after.tuples - before.tuples } };
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
/** The restore baseline: `pg_restore --no-owner --no-acl` of a local file into an empty database. */
async function bareRestore(ctx: BenchContext, pgRestore: string, file: string, database: string): Promise<number> {
  return (await run(pgRestore, ["--no-owner", "--no-acl", "--exit-on-error", "--no-password", "--dbname", database, file], pgEnv(ctx, database))).ms;
}

async function freshDatabase(ctx: BenchContext, name: string): Promise<void> {
  await sql(ctx, "postgres", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await sql(ctx, "postgres", `CREATE DATABASE ${name} TEMPLATE template0`);
}

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
  /** Reads on the source database during each bare pg_dump / pipeline run. */
  bareReads: Reads[];
  pipelineReads: Reads[];
  /** Runs of the peer (pg_dump -Fc to a file, then upload) and of the verified backup, each after the rep's bare dump. */
  peer: { bareMs: number; out: PeerOut }[];
  verified: { bareMs: number; out: BackupOut }[];
  /** Per round (--repeat): the median of that round's pair ratios. */
  roundRatios: number[];
  restore?: { bareMs: number[]; streamedMs: number[]; parallelMs: number[]; jobs: number };
}

/** `--repeat N`: rounds of the large database's bare/pipeline pairs; dump.ratio is the median of the rounds' ratios. */
const size0Rounds = (ctx: BenchContext) => Math.max(1, ctx.repeat);

const RESTORE_JOBS = 2;

/** `BENCH_DUMP_PARTS=peer,verified,restore` (default: all): the large database's side measures to run; the pairs with bare pg_dump always run. */
const ALL_PARTS = ["peer", "verified", "restore"] as const;
type Part = (typeof ALL_PARTS)[number];
function dumpParts(): Set<Part> {
  const raw = process.env.BENCH_DUMP_PARTS;
  if (raw === undefined || raw.trim() === "") return new Set(ALL_PARTS);
  const parts = raw
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of parts)
    if (!(ALL_PARTS as readonly string[]).includes(p)) throw new Error(`BENCH_DUMP_PARTS: unknown part ${p}; known: ${ALL_PARTS.join(", ")}`);
  return new Set(parts as Part[]);
}
/** What a restore into a preview uses (WorkerOptions.restoreJobs' default): restore.ratio measures that path. */
const SERVICE_RESTORE_JOBS = defaultWorkerOptions.restoreJobs;

/**
 * Restores of the large artifact (the last pipeline run's object) into empty databases, interleaved:
 * bare `pg_restore` from a local copy of the file (not timed: downloaded once), then the service's
 * `restoreInto` streamed from the object store, then `restoreInto` with `jobs` (downloaded to a
 * local file, then `pg_restore --jobs`).
 */
async function measureRestores(ctx: BenchContext, pgRestore: string, r: DbRun, major: number, reps: number): Promise<NonNullable<DbRun["restore"]>> {
  const file = path.join(ctx.tmp, "restore-source.dump");
  const got = await ctx.deps.s3.send(new GetObjectCommand({ Bucket: ctx.deps.bucket, Key: r.key }));
  await pipeline(got.Body as Readable, createWriteStream(file));
  chmodSync(file, 0o644);
  const target = "bench_restore";
  const out = { bareMs: [] as number[], streamedMs: [] as number[], parallelMs: [] as number[], jobs: RESTORE_JOBS };
  try {
    for (let i = 0; i < reps; i++) {
      await freshDatabase(ctx, target);
      out.bareMs.push(await bareRestore(ctx, pgRestore, file, target));
      for (const jobs of [1, RESTORE_JOBS]) {
        await freshDatabase(ctx, target);
        const c = await runChild<RestoreOut>(
          ctx.children.dump,
          { mode: "restore", conn: ctx.conn, database: target, key: r.key, sha256: r.last.sha256, rowCounts: r.last.rowCounts, serverMajor: major, jobs },
          ctx.childEnv,
          { timeoutMs: 30 * 60_000 },
        );
        (jobs === 1 ? out.streamedMs : out.parallelMs).push(c.result.ms);
      }
      ctx.log(
        `restore #${i + 1}: bare pg_restore ${round(out.bareMs.at(-1)! / 1000, 1)} s, service streamed ${round(out.streamedMs.at(-1)! / 1000, 1)} s, service --jobs=${RESTORE_JOBS} ${round(out.parallelMs.at(-1)! / 1000, 1)} s`,
      );
    }
  } finally {
    await sql(ctx, "postgres", `DROP DATABASE IF EXISTS ${target} WITH (FORCE)`).catch(() => undefined);
    rmSync(file, { force: true });
  }
  return out;
}

export async function measureDump(ctx: BenchContext): Promise<MeasureResult> {
  const sizes = ctx.quick
    ? [
        { label: "small", scale: 1, reps: 2, sideReps: 0 },
        { label: "large", scale: 4, reps: 2, sideReps: 2 },
      ]
    : [
        { label: "small", scale: 7, reps: 3, sideReps: 0 },
        { label: "large", scale: 35, reps: 5, sideReps: 3 },
      ];
  const [version] = await sql<{ num: string }>(ctx, "postgres", "SELECT current_setting('server_version_num') AS num");
  const major = Math.floor(Number(version!.num) / 10000);
  const tools = await pickPgTools({ major, text: String(major) }, ctx.deps.pgBinDirs);
  const runs: DbRun[] = [];

  const rounds = size0Rounds(ctx);
  const parts = dumpParts();
  for (const size of sizes) {
    const db = `bench_${size.label}`;
    const large = size.label === "large";
    ctx.log(`dump: generating ${db} (pgbench -i -s ${size.scale})`);
    const t = performance.now();
    const dbBytes = await generate(ctx, db, size.scale);
    ctx.log(`dump: ${db} is ${round(mb(dbBytes), 0)} MB (generated in ${round((performance.now() - t) / 1000, 0)} s); warming up`);
    await bareDump(ctx, tools.pgDump, db); // page cache warm for both sides
    const r: DbRun = {
      label: size.label,
      scale: size.scale,
      dbBytes,
      bareMs: [],
      pipelineMs: [],
      peakRssKb: [],
      sampledRssKb: [],
      workerCpuMs: [],
      standInCpuMs: [],
      last: undefined as unknown as DumpOut,
      key: "",
      bareReads: [],
      pipelineReads: [],
      peer: [],
      verified: [],
      roundRatios: [],
    };
    const drop = async (key: string) => void (await ctx.deps.s3.send(new DeleteObjectCommand({ Bucket: ctx.deps.bucket, Key: key })));
    for (let round_ = 0; round_ < (large ? rounds : 1); round_++) {
      const from = r.pipelineMs.length;
      for (let i = 0; i < size.reps; i++) {
        // Interleaved, so drift in the machine's load hits both sides alike.
        const bare = await readsDuring(ctx, db, () => bareDump(ctx, tools.pgDump, db));
        r.bareMs.push(bare.result);
        r.bareReads.push(bare.reads);
        const key = `bench/${db}/${round_}-${i}.dump`;
        const cpu0 = process.cpuUsage();
        const { result: child, reads } = await readsDuring(ctx, db, () =>
          runChild<DumpOut>(ctx.children.dump, { mode: "dump", conn: ctx.conn, database: db, key }, ctx.childEnv, { timeoutMs: 20 * 60_000 }),
        );
        r.pipelineReads.push(reads);
        const cpu = process.cpuUsage(cpu0);
        r.standInCpuMs.push((cpu.user + cpu.system) / 1000);
        r.workerCpuMs.push(child.result.cpuMs);
        r.pipelineMs.push(child.result.ms);
        r.peakRssKb.push(child.result.vmHwmKb);
        r.sampledRssKb.push(child.sampledMaxRssKb);
        if (r.key) await drop(r.key);
        r.key = key;
        r.last = child.result;
        ctx.log(
          `dump: ${db} #${round_ + 1}.${i + 1}: bare ${round(bare.result / 1000, 1)} s, pipeline ${round(child.result.ms / 1000, 1)} s ` +
            `(${round(mb(child.result.sizeBytes), 1)} MB artifact, rows counted from the ${child.result.rowCountsFrom}, peak RSS ${round(child.result.vmHwmKb / 1024, 0)} MB; CPU: worker ${round(child.result.cpuMs / 1000, 1)} s, stand-ins ${round(r.standInCpuMs.at(-1)! / 1000, 1)} s; ` +
            `S3 ${Object.entries(child.result.s3)
              .map(([op, o]) => `${op} x${o.calls} ${round(o.ms, 0)} ms`)
              .join(", ")}; ` +
            `source reads: blocks ${bare.reads.blocks} bare / ${reads.blocks} ours, tuples ${bare.reads.tuples} / ${reads.tuples})`,
        );
        if (large && round_ === 0 && i < size.sideReps) {
          if (parts.has("peer")) {
            const peerKey = `bench/${db}/peer-${i}.dump`;
            const peer = await runChild<PeerOut>(
              ctx.children.dump,
              { mode: "peer", conn: ctx.conn, database: db, key: peerKey, serverMajor: major },
              ctx.childEnv,
              { timeoutMs: 20 * 60_000 },
            );
            await drop(peerKey);
            r.peer.push({ bareMs: bare.result, out: peer.result });
            ctx.log(
              `dump: ${db} #${i + 1}: peer ${round(peer.result.ms / 1000, 1)} s (pg_dump ${round(peer.result.dumpMs / 1000, 1)} s + upload ${round(peer.result.uploadMs / 1000, 1)} s, ${round(mb(peer.result.sizeBytes), 1)} MB)`,
            );
          }
          if (parts.has("verified")) {
            const backupKey = `bench/${db}/verified-${i}.dump`;
            const verified = await runChild<BackupOut>(ctx.children.dump, { mode: "backup", conn: ctx.conn, database: db, key: backupKey }, ctx.childEnv, {
              timeoutMs: 30 * 60_000,
            });
            await drop(backupKey);
            r.verified.push({ bareMs: bare.result, out: verified.result });
            ctx.log(
              `dump: ${db} #${i + 1}: verified backup ${round(verified.result.ms / 1000, 1)} s (dump+restore stream ${round(verified.result.dumpMs / 1000, 1)} s, restore in all ${round(verified.result.restoreMs / 1000, 1)} s)`,
            );
          }
        }
      }
      const ratios = r.pipelineMs.slice(from).map((p, k) => p / r.bareMs[from + k]!);
      r.roundRatios.push(median(ratios));
      if (large && rounds > 1)
        ctx.log(`dump: ${db} round ${round_ + 1}/${rounds}: ratio ${round(median(ratios), 3)} (pairs ${ratios.map((x) => round(x, 3)).join(", ")})`);
    }
    ctx.log(`dump: verifying ${db} (restore from the stored object into a throwaway database + row counts)`);
    const v = await runChild<VerifyOut>(
      ctx.children.dump,
      { mode: "verify", conn: ctx.conn, key: r.key, sha256: r.last.sha256, rowCounts: r.last.rowCounts, serverMajor: major },
      ctx.childEnv,
      { timeoutMs: 30 * 60_000 },
    );
    r.verify = { ms: v.result.ms, vmHwmKb: v.result.vmHwmKb };
    ctx.log(`dump: ${db} verified in ${round(v.result.ms / 1000, 1)} s`);
    if (large && parts.has("restore")) r.restore = await measureRestores(ctx, tools.pgRestore, r, major, size.sideReps);
    await drop(r.key);
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
  const ratio = median(large.roundRatios);
  const pairs = (xs: number[], ys: number[]) => median(xs.map((x, i) => x / ys[i]!));
  const vsPeer = pairs(
    large.peer.map((_, i) => large.pipelineMs[i]!),
    large.peer.map((p) => p.out.ms),
  );
  const peerBytes = median(large.peer.map((p) => p.out.sizeBytes));
  const artifactVsPeer = large.last.sizeBytes / peerBytes;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const blocksRatio = sum(large.pipelineReads.map((x) => x.blocks)) / sum(large.bareReads.map((x) => x.blocks));
  const tuplesRatio = sum(large.pipelineReads.map((x) => x.tuples)) / sum(large.bareReads.map((x) => x.tuples));
  const readsRatio = Math.max(blocksRatio, tuplesRatio);
  const verifiedRatio = pairs(
    large.verified.map((v) => v.out.ms),
    large.verified.map((v) => v.bareMs),
  );
  const rs = large.restore ?? { bareMs: [], streamedMs: [], parallelMs: [], jobs: RESTORE_JOBS };
  const restoreRatio = pairs(SERVICE_RESTORE_JOBS > 1 ? rs.parallelMs : rs.streamedMs, rs.bareMs);
  const restoreOther = pairs(SERVICE_RESTORE_JOBS > 1 ? rs.streamedMs : rs.parallelMs, rs.bareMs);
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
    ...(parts.has("peer")
      ? [
          { key: "dump.vs_peer", value: round(vsPeer, 3), target: "<= 0.8", pass: vsPeer <= 0.8 },
          { key: "dump.artifact_vs_peer", value: round(artifactVsPeer, 3), target: "<= 1.1", pass: artifactVsPeer <= 1.1 },
        ]
      : []),
    { key: "dump.source_reads_ratio", value: round(readsRatio, 3), target: "<= 1.05", pass: readsRatio <= 1.05 },
    ...(parts.has("verified") ? [{ key: "backup.verified_ratio", value: round(verifiedRatio, 3), target: "<= 1.4", pass: verifiedRatio <= 1.4 }] : []),
    ...(parts.has("restore") ? [{ key: "restore.ratio", value: round(restoreRatio, 3), target: "<= 1.2", pass: restoreRatio <= 1.2 }] : []),
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
  const check = (key: string) => checks.find((c) => c.key === key) ?? { key, value: NaN, target: "", pass: false };
  const sec = (ms: number) => `${round(ms / 1000, 1)} s`;
  const peerMs = median(large.peer.map((p) => p.out.ms));
  const verifiedMs = median(large.verified.map((v) => v.out.ms));
  const verifiedBareMs = median(large.verified.map((v) => v.bareMs));
  return {
    figures: {
      dump: {
        ratio: round(ratio, 3),
        peak_rss_mb: round(peakRssMb, 1),
        rss_flatness: round(flatness, 3),
        vs_peer: round(vsPeer, 3),
        artifact_vs_peer: round(artifactVsPeer, 3),
        source_reads_ratio: round(readsRatio, 3),
        ratio_rounds: large.roundRatios.map((x) => round(x, 3)),
        rounds: large.roundRatios.length,
        compress_level: DEFAULT_COMPRESS_LEVEL,
        row_counts_from: large.last.rowCountsFrom,
        peer: {
          ms: large.peer.map((p) => round(p.out.ms, 0)),
          pg_dump_ms: large.peer.map((p) => round(p.out.dumpMs, 0)),
          upload_ms: large.peer.map((p) => round(p.out.uploadMs, 0)),
          median_ms: round(peerMs, 0),
          artifact_mb: round(mb(peerBytes), 1),
          pair_ratios: large.peer.map((p, i) => round(large.pipelineMs[i]! / p.out.ms, 3)),
        },
        source_reads: {
          blocks_ratio: round(blocksRatio, 3),
          tuples_ratio: round(tuplesRatio, 3),
          bare: large.bareReads,
          pipeline: large.pipelineReads,
        },
        pg_dump_version: large.last.pgDumpVersion,
        part_size_mb: round(mb(large.last.partSizeBytes), 1),
        upload_queue_size: large.last.uploadQueueSize,
        small: s,
        large: l,
      },
      backup: {
        verified_ratio: round(verifiedRatio, 3),
        verified_ms: large.verified.map((v) => round(v.out.ms, 0)),
        bare_ms: large.verified.map((v) => round(v.bareMs, 0)),
        dump_phase_ms: large.verified.map((v) => round(v.out.dumpMs, 0)),
        restore_ms: large.verified.map((v) => round(v.out.restoreMs, 0)),
        worker_cpu_ms: large.verified.map((v) => round(v.out.cpuMs, 0)),
        peak_rss_mb: round(Math.max(...large.verified.map((v) => v.out.vmHwmKb)) / 1024, 1),
        pair_ratios: large.verified.map((v) => round(v.out.ms / v.bareMs, 3)),
      },
      restore: {
        ratio: round(restoreRatio, 3),
        service_jobs: SERVICE_RESTORE_JOBS,
        bare_ms: rs.bareMs.map((x) => round(x, 0)),
        streamed_ms: rs.streamedMs.map((x) => round(x, 0)),
        parallel_ms: rs.parallelMs.map((x) => round(x, 0)),
        parallel_jobs: rs.jobs,
        streamed_ratio: round(pairs(rs.streamedMs, rs.bareMs), 3),
        parallel_ratio: round(pairs(rs.parallelMs, rs.bareMs), 3),
        artifact_mb: l.artifact_mb,
        db_mb_per_s: round(mb(large.dbBytes) / (median(SERVICE_RESTORE_JOBS > 1 ? rs.parallelMs : rs.streamedMs) / 1000), 1),
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
    rows: (
      [
        [
          `dump ${l.db_mb} MB db`,
          `pipeline ${l.pipeline_median_ms} ms (median)`,
          `pg_dump ${l.bare_median_ms} ms (median)`,
          `${round(ratio, 2)}x (pairs${large.roundRatios.length > 1 ? `, median of ${large.roundRatios.length} rounds` : ""}; medians ${l.ratio_of_medians}x, minimums ${l.ratio_of_minimums}x)`,
          "<= 1.15x",
          pf(check("dump.ratio")),
        ],
        [
          "dump vs peer",
          `pipeline ${l.pipeline_median_ms} ms, ${l.artifact_mb} MB`,
          `pg_dump -Fc + upload ${round(peerMs, 0)} ms, ${round(mb(peerBytes), 1)} MB`,
          `${round(vsPeer, 2)}x time, ${round(artifactVsPeer, 2)}x bytes`,
          "<= 0.8x, <= 1.1x",
          `${pf(check("dump.vs_peer"))}/${pf(check("dump.artifact_vs_peer"))}`,
        ],
        [
          "dump source reads",
          `${round(median(large.pipelineReads.map((x) => x.blocks)), 0)} blocks, ${round(median(large.pipelineReads.map((x) => x.tuples)), 0)} tuples`,
          `pg_dump ${round(median(large.bareReads.map((x) => x.blocks)), 0)} blocks, ${round(median(large.bareReads.map((x) => x.tuples)), 0)} tuples`,
          `${round(blocksRatio, 3)}x blocks, ${round(tuplesRatio, 3)}x tuples`,
          "<= 1.05x",
          pf(check("dump.source_reads_ratio")),
        ],
        [
          `verified backup ${l.db_mb} MB`,
          `dump+upload+verify ${round(verifiedMs, 0)} ms (median)`,
          `pg_dump ${round(verifiedBareMs, 0)} ms (median)`,
          `${round(verifiedRatio, 2)}x (pairs)`,
          "<= 1.4x",
          pf(check("backup.verified_ratio")),
        ],
        [
          `restore ${l.artifact_mb} MB artifact`,
          `service ${sec(median(SERVICE_RESTORE_JOBS > 1 ? rs.parallelMs : rs.streamedMs))} (${SERVICE_RESTORE_JOBS > 1 ? `--jobs=${SERVICE_RESTORE_JOBS}` : "streamed"}; ${SERVICE_RESTORE_JOBS > 1 ? "streamed" : `--jobs=${rs.jobs}`} ${round(restoreOther, 2)}x)`,
          `pg_restore file ${sec(median(rs.bareMs))}`,
          `${round(restoreRatio, 2)}x (pairs)`,
          "<= 1.2x",
          pf(check("restore.ratio")),
        ],
        [
          `dump ${s.db_mb} MB db`,
          `pipeline ${s.pipeline_median_ms} ms (median)`,
          `pg_dump ${s.bare_median_ms} ms (median)`,
          `${s.ratio}x (pairs)`,
          "(info)",
          "",
        ],
        [
          "dump peak RSS",
          `${l.peak_rss_mb} MB (${l.db_mb} MB db)`,
          `${s.peak_rss_mb} MB (${s.db_mb} MB db)`,
          `${round(flatness, 2)}x`,
          "<= 256 MB, flat (<= 1.2x)",
          `${pf(check("dump.peak_rss_mb"))}/${pf(check("dump.rss_flatness"))}`,
        ],
        [
          `verify ${l.db_mb} MB db`,
          `${l.verify_ms} ms (${l.verify_db_mb_per_s} MB/s db, ${l.verify_artifact_mb_per_s} MB/s artifact)`,
          `dump ${l.pipeline_median_ms} ms (${l.pipeline_db_mb_per_s} MB/s)`,
          `${round(verifyRatio, 2)}x`,
          "(report)",
          "",
        ],
        ...(checks.find((c) => c.key === "dump.large_db_mb") ? [["dump db size", `${l.db_mb} MB`, "", "", ">= 500 MB", pf(check("dump.large_db_mb"))]] : []),
      ] as string[][]
    ).filter(
      (row) =>
        !(
          (row[0] === "dump vs peer" && !parts.has("peer")) ||
          (row[0]!.startsWith("verified backup") && !parts.has("verified")) ||
          (row[0]!.startsWith("restore ") && !parts.has("restore"))
        ),
    ),
  };
}
