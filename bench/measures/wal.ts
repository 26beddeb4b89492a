import { spawn } from "node:child_process";
import { createReadStream, mkdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { Upload } from "@aws-sdk/lib-storage";
import pg from "pg";
import { createCluster } from "../../core/orgs/orgs.ts";
import { installedPgTools } from "../../core/pg/pgtools.ts";
import { enableArchive, getArchive, listSegments, restorableWindow } from "../../core/wal/archive.ts";
import { runBaseBackup } from "../../core/wal/basebackups.ts";
import { compareLsn } from "../../core/pg/lsn.ts";
import { buildArchiver } from "../../scripts/build-task.ts";
import { trackChild } from "../lib/cleanup.ts";
import { type BenchContext, type Check, type MeasureResult, pgEnv } from "../lib/context.ts";
import { procStatusKb } from "../lib/proc.ts";
import { median, round, sleep } from "../lib/stats.ts";

const PG_BIN = "/usr/lib/postgresql/15/bin";

/**
 * The WAL archive (issue 31): the deployed archiver's bundle (functions/archiver.ts, default
 * timers: the partial segment ships every 5 s) as a child process, archiving the bench cluster
 * while pgbench writes to it. Lag p50/p99 (now minus the archive's restorable time, sampled every
 * second under load), stored bytes per raw WAL byte, the archiver's peak RSS in a first and a
 * second load phase (flat: the second phase doubles the WAL it has shipped), then the base backup
 * pipeline (pg_basebackup -Ft streamed through gzip to S3 and verified) against a bare
 * `pg_basebackup -Ft` to a local file then uploaded.
 */
export async function measureWal(ctx: BenchContext): Promise<MeasureResult> {
  const loadSeconds = ctx.quick ? 20 : 45;
  const scale = ctx.quick ? 3 : 10;
  const db = "walbench";
  await sql(ctx, "postgres", `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await sql(ctx, "postgres", `CREATE DATABASE ${db}`);
  await run(`${PG_BIN}/pgbench`, ["-i", "-q", "-s", String(scale)], pgEnv(ctx, db));

  const cluster = await createCluster(ctx.deps, {
    name: `wal-bench-${Date.now().toString(36)}`,
    url: `postgres://${encodeURIComponent(ctx.conn.user)}:${encodeURIComponent(ctx.conn.password)}@${ctx.conn.host}:${ctx.conn.port}/postgres?sslmode=disable`,
    insecure_tls: true,
  });
  await enableArchive(ctx.deps, cluster.id);

  const bundle = await buildArchiver(path.join(ctx.tmp, "archiver", "archiver.mjs"));
  const spool = path.join(ctx.tmp, "archiver", "wal");
  mkdirSync(spool, { recursive: true });
  const child = trackChild(
    spawn(process.execPath, [bundle], {
      env: { ...ctx.childEnv, CAPYDB_WAL_SPOOL_DIR: spool, LOG_LEVEL: "DEBUG", CAPYDB_LOG_FORMAT: "json" },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  // Its debug log names every upload (the partial segment's re-uploads too): bytes sent to S3.
  const shipped = { count: 0, partials: 0, storedBytes: 0, counting: false };
  let pending = "";
  child.stdout!.on("data", (d: Buffer) => {
    const lines = (pending + d.toString()).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      if (!shipped.counting || !line.includes('"WAL file shipped"')) continue;
      const e = JSON.parse(line) as { partial: boolean; stored_bytes: number };
      shipped.count++;
      shipped.partials += e.partial ? 1 : 0;
      shipped.storedBytes += e.stored_bytes;
    }
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  let phase: 0 | 1 | 2 = 0;
  const peakRssKb = [0, 0, 0];
  const sampler = setInterval(() => {
    const rss = child.pid ? procStatusKb(child.pid, "VmRSS") : undefined;
    if (rss && rss > peakRssKb[phase]!) peakRssKb[phase] = rss;
  }, 200);

  try {
    ctx.log(`wal: archiver started; waiting for the first base backup (the window to open)`);
    const opened = Date.now();
    while (!(await restorableWindow(ctx.deps, cluster.id)).available) {
      if (Date.now() - opened > 180_000) throw new Error(`the archive's window did not open in 3 minutes: ${stderr.slice(-1000)}`);
      await sleep(1000);
    }
    ctx.log(`wal: window open after ${round((Date.now() - opened) / 1000, 1)} s; pgbench load 2 x ${loadSeconds} s`);

    const lags: number[] = [];
    const startLsn = await currentLsn(ctx);
    shipped.counting = true;
    for (const p of [1, 2] as const) {
      phase = p;
      const load = run(`${PG_BIN}/pgbench`, ["-c", "2", "-j", "1", "-T", String(loadSeconds), "-R", "300", "-n"], pgEnv(ctx, db));
      const until = Date.now() + loadSeconds * 1000;
      while (Date.now() < until) {
        const a = await getArchive(ctx.deps, cluster.id);
        if (a?.restorable_time) lags.push((Date.now() - Date.parse(a.restorable_time)) / 1000);
        await sleep(1000);
      }
      await load;
    }
    phase = 0;
    const endLsn = await currentLsn(ctx);
    const rawWalBytes = Number((await sql<{ d: string }>(ctx, "postgres", `SELECT pg_wal_lsn_diff('${endLsn}', '${startLsn}')::bigint::text AS d`))[0]!.d);
    // Everything written is shipped (the partial segment included) before the bytes are counted.
    const caught = Date.now();
    while (!(await archivedPast(ctx, cluster.id, endLsn)) && Date.now() - caught < 60_000) await sleep(500);
    shipped.counting = false;
    const segments = (await listSegments(ctx.deps, cluster.id)).filter((s) => !s.partial);
    const stored = segments.reduce((n, s) => n + s.stored_bytes, 0);
    const raw = segments.reduce((n, s) => n + s.size_bytes, 0);

    const p50 = percentile(lags, 50);
    const p99 = percentile(lags, 99);
    const rss1 = peakRssKb[1]! / 1024;
    const rss2 = peakRssKb[2]! / 1024;

    child.kill("SIGTERM");
    const code = await exited;
    if (code !== 0) throw new Error(`the archiver exited ${code} on SIGTERM: ${stderr.slice(-1000)}`);
    clearInterval(sampler);

    // Base backups: ours (the archiver's pipeline, in this process) against the bare peer, alternately.
    // The tools are looked up once per process (the archiver runs for days): not part of a backup's time.
    await installedPgTools(ctx.deps.pgBinDirs);
    const rounds = ctx.quick ? 1 : 3;
    const ours: number[] = [];
    const peer: number[] = [];
    let ourSize = 0;
    let peerSize = 0;
    for (let r = 0; r < rounds; r++) {
      const b = await runBaseBackup(ctx.deps, cluster.id, "operator", { scratchDir: ctx.tmp });
      if (b.state !== "completed") throw new Error(`base backup failed: ${b.error}`);
      ours.push(b.duration_ms!);
      ourSize = b.size_bytes!;
      const p = await peerBaseBackup(ctx, r);
      peer.push(p.ms);
      peerSize = p.bytes;
    }
    const bbRatio = median(ours) / median(peer);

    const figures = {
      wal: {
        load_seconds: 2 * loadSeconds,
        pgbench_scale: scale,
        raw_wal_mb: round(rawWalBytes / 1024 ** 2, 1),
        lag_samples: lags.length,
        lag_p50_s: round(p50, 1),
        lag_p99_s: round(p99, 1),
        lag_max_s: round(Math.max(...lags), 1),
        segments: segments.length,
        stored_per_raw: round(stored / raw, 3),
        uploaded_per_raw: round(shipped.storedBytes / rawWalBytes, 3),
        uploads: shipped.count,
        partial_uploads: shipped.partials,
        receiver_peak_rss_mb: { phase1: round(rss1, 1), phase2: round(rss2, 1) },
        receiver_rss_growth: round(rss2 / rss1, 2),
      },
      basebackup: {
        ms: round(median(ours), 0),
        peer_ms: round(median(peer), 0),
        ratio: round(bbRatio, 2),
        stored_mb: round(ourSize / 1024 ** 2, 1),
        peer_mb: round(peerSize / 1024 ** 2, 1),
        rounds,
      },
    };
    const checks: Check[] = [
      { key: "wal.lag_p99_s", value: round(p99, 1), target: "<= 30 s", pass: p99 <= 30 },
      { key: "wal.receiver_rss_growth", value: round(rss2 / rss1, 2), target: "<= 1.25 (flat)", pass: rss2 / rss1 <= 1.25 },
      { key: "basebackup.ratio", value: round(bbRatio, 2), target: "<= 0.9", pass: bbRatio <= 0.9 },
    ];
    const verdict = (k: string) => (checks.find((c) => c.key === k)!.pass ? "PASS" : "FAIL");
    const rows = [
      ["wal.lag", `p50 ${round(p50, 1)} s, p99 ${round(p99, 1)} s (${lags.length} samples)`, "", "", "p99 <= 30 s", verdict("wal.lag_p99_s")],
      ["wal.stored_per_raw", `${round(stored / raw, 3)} (${segments.length} segments)`, "", "", "", ""],
      ["wal.uploaded_per_raw", `${round(shipped.storedBytes / rawWalBytes, 3)} (${shipped.count} uploads, ${shipped.partials} partial)`, "", "", "", ""],
      [
        "wal.receiver_rss",
        `${round(rss2, 1)} MB after ${round(rawWalBytes / 1024 ** 2, 0)} MB WAL`,
        `${round(rss1, 1)} MB (first half)`,
        String(round(rss2 / rss1, 2)),
        "<= 1.25",
        verdict("wal.receiver_rss_growth"),
      ],
      [
        "basebackup",
        `${round(median(ours) / 1000, 2)} s (gzip + verified, ${round(ourSize / 1024 ** 2, 0)} MB)`,
        `${round(median(peer) / 1000, 2)} s (pg_basebackup -Ft + upload, ${round(peerSize / 1024 ** 2, 0)} MB)`,
        String(round(bbRatio, 2)),
        "<= 0.9",
        verdict("basebackup.ratio"),
      ],
    ];
    return { figures, checks, rows };
  } finally {
    clearInterval(sampler);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await sql(ctx, "postgres", `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
  }
}

/** `pg_basebackup -Ft -X none` into a local directory, then its tar and manifest uploaded as lib-storage does it. */
async function peerBaseBackup(ctx: BenchContext, round: number): Promise<{ ms: number; bytes: number }> {
  const dir = path.join(ctx.tmp, `peer-basebackup-${round}`);
  rmSync(dir, { recursive: true, force: true });
  const t0 = performance.now();
  await run(`${PG_BIN}/pg_basebackup`, ["-D", dir, "-Ft", "-X", "none", "--checkpoint=fast", "--no-password"], pgEnv(ctx, "postgres"));
  let bytes = 0;
  for (const name of ["base.tar", "backup_manifest"]) {
    const file = path.join(dir, name);
    bytes += statSync(file).size;
    await new Upload({
      client: ctx.deps.s3,
      params: { Bucket: ctx.deps.bucket, Key: `bench/peer-basebackup/${round}/${name}`, Body: createReadStream(file) },
      partSize: 8 * 1024 * 1024,
      queueSize: 4,
    }).done();
  }
  const ms = performance.now() - t0;
  rmSync(dir, { recursive: true, force: true });
  return { ms, bytes };
}

function percentile(xs: number[], p: number): number {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function currentLsn(ctx: BenchContext): Promise<string> {
  return (await sql<{ lsn: string }>(ctx, "postgres", "SELECT pg_current_wal_lsn()::text AS lsn"))[0]!.lsn;
}

async function archivedPast(ctx: BenchContext, clusterId: string, lsn: string): Promise<boolean> {
  const a = await getArchive(ctx.deps, clusterId);
  return a?.archived_lsn ? compareLsn(a.archived_lsn, lsn) >= 0 : false;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const child = trackChild(spawn(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] }));
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} exited with ${code ?? signal}: ${stderr.trim()}`)),
    );
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
