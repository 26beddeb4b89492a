/**
 * Point-in-time restore (issue 32): the service's restore of the bench database to a time, with
 * WAL to replay (core/worker/pitr.ts: base backup streamed from S3 and unpacked, WAL fetched from
 * S3 by the restore_command, replayed by a recovery instance, the database copied out with
 * pg_dump | pg_restore), against the sum of its bare parts run in the same invocation on the same
 * files: `tar -xzf` of the same base backup from local disk, `postgres` replaying the same WAL
 * from local disk (restore_command `cp`) to the same time, and `pg_dump -Fc -Z0 | pg_restore` of
 * the recovered database. Goal: at most 1.3x. Three rounds (`--repeat N` for N, one with
 * BENCH_QUICK), the two sides interleaved; the ratio is the median round's.
 */
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import pg from "pg";
import { createCluster } from "../../core/orgs/orgs.ts";
import { pickPgTools } from "../../core/pg/pgtools.ts";
import { findServerBinary } from "../../core/pg/recovery.ts";
import { restoreDatabaseToTime } from "../../core/wal/recover.ts";
import { startArchivedCluster } from "../../test/pg/archived-cluster.ts";
import { publishArchive } from "../../test/pg/publish-archive.ts";
import { onCleanup, trackChild } from "../lib/cleanup.ts";
import type { BenchContext, Check, MeasureResult } from "../lib/context.ts";
import { round } from "../lib/stats.ts";

const GB = 1024 ** 3;
const PGBENCH = "/usr/lib/postgresql/15/bin/pgbench";

function owner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  return { uid: Number(execFileSync("id", ["-u", "postgres"]).toString()), gid: Number(execFileSync("id", ["-g", "postgres"]).toString()) };
}

async function timed<T>(fn: () => Promise<T> | T): Promise<{ ms: number; result: T }> {
  const t0 = performance.now();
  const result = await fn();
  return { ms: performance.now() - t0, result };
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = trackChild(spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"], ...opts }));
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} failed (${code}): ${err}`))));
  });
}

/** The extracted backup made ready to replay WAL copied to local disk up to `time` (not timed: the service does more here). */
function prepareBare(dir: string, walDir: string, time: Date, user: { uid: number; gid: number } | undefined): string {
  const data = path.join(dir, "data");
  const socket = path.join(dir, "sock");
  mkdirSync(socket, { mode: 0o700 });
  rmSync(path.join(data, "postgresql.auto.conf"), { force: true });
  rmSync(path.join(data, "backup_manifest"), { force: true });
  mkdirSync(path.join(data, "pg_wal", "archive_status"), { recursive: true });
  const restore = `f=%f; if [ -f ${walDir}/$f ]; then cp ${walDir}/$f %p; elif [ -f ${walDir}/$f.partial ]; then cp ${walDir}/$f.partial %p; else exit 1; fi`;
  writeFileSync(
    path.join(data, "postgresql.conf"),
    [
      "listen_addresses = ''",
      `unix_socket_directories = '${socket}'`,
      `restore_command = '${restore.replace(/'/g, "''")}'`,
      `recovery_target_time = '${time.toISOString().replace("T", " ").replace("Z", "+00")}'`,
      "recovery_target_action = 'promote'",
      "hot_standby = off",
      "fsync = off",
      "synchronous_commit = off",
      "autovacuum = off",
      "shared_buffers = '128MB'",
      "max_wal_size = '4GB'",
      "checkpoint_timeout = '1h'",
      "",
    ].join("\n"),
  );
  writeFileSync(path.join(data, "pg_hba.conf"), "local all all trust\n");
  writeFileSync(path.join(data, "recovery.signal"), "");
  if (user) execFileSync("chown", ["-R", `${user.uid}:${user.gid}`, dir]);
  return socket;
}

/** `postgres` on the prepared directory; resolves once recovery reached the time and promoted. */
async function bareReplay(dir: string, socket: string, user: { uid: number; gid: number } | undefined): Promise<{ stop: () => Promise<void>; socket: string }> {
  const data = path.join(dir, "data");
  const bin = await findServerBinary(15);
  const child = trackChild(spawn(bin, ["-D", data], { stdio: ["ignore", "ignore", "pipe"], ...user }));
  let log = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      log = (log + d.toString()).slice(-8000);
      if (/database system is ready to accept connections/.test(log)) resolve();
    });
    child.once("close", () => reject(new Error(`the bare replay's server exited: ${log}`)));
  });
  return {
    socket,
    stop: async () => {
      if (child.exitCode !== null) return;
      const closed = new Promise((r) => child.once("close", r));
      child.kill("SIGQUIT");
      await closed;
    },
  };
}

export async function measurePitr(ctx: BenchContext): Promise<MeasureResult> {
  const scale = ctx.quick ? 3 : 8;
  const updates = 1;
  const user = owner();
  ctx.log(`pitr: an archived cluster (pg_receivewal), pgbench scale ${scale}, a base backup, then ${updates} full-table update(s) to replay`);
  const src = await startArchivedCluster();
  onCleanup("pitr source cluster", () => src.stop());
  const env = { ...process.env, PGHOST: "127.0.0.1", PGPORT: String(src.conn.port), PGUSER: src.conn.user, PGPASSWORD: src.conn.password };
  await src.query("postgres", "CREATE DATABASE bench");
  await run(PGBENCH, ["-i", "-q", "-s", String(scale), "bench"], { env });
  const tar = await src.baseBackup();
  const [{ lsn: startLsn }] = (await src.query<{ lsn: string }>("postgres", "SELECT pg_current_wal_lsn()::text AS lsn")) as [{ lsn: string }];
  for (let i = 0; i < updates; i++) await src.query("bench", "UPDATE pgbench_accounts SET abalance = abalance + 1");
  await src.query("bench", "CHECKPOINT");
  await new Promise((r) => setTimeout(r, 1100));
  const time = new Date();
  const [{ lsn: targetLsn, size }] = (await src.query<{ lsn: string; size: string }>(
    "bench",
    "SELECT pg_current_wal_lsn()::text AS lsn, pg_database_size('bench')::text AS size",
  )) as [{ lsn: string; size: string }];
  await new Promise((r) => setTimeout(r, 1100));
  await src.query("bench", "UPDATE pgbench_branches SET bbalance = bbalance + 1"); // the first commit after the time
  const [{ bytes: walBytesStr }] = (await src.query<{ bytes: string }>("postgres", `SELECT pg_wal_lsn_diff('${targetLsn}', '${startLsn}')::text AS bytes`)) as [
    { bytes: string },
  ];
  const walBytes = Number(walBytesStr);
  const dbBytes = Number(size);

  const cluster = await createCluster(ctx.deps, {
    name: `pitr-bench-${Date.now()}`,
    url: `postgres://${encodeURIComponent(src.conn.user)}:${encodeURIComponent(src.conn.password)}@127.0.0.1:${src.conn.port}/postgres?sslmode=disable`,
    insecure_tls: true,
  });
  ctx.log(`pitr: publishing the archive to S3 (${round(walBytes / 1024 ** 2, 0)} MB of WAL to replay, database ${round(dbBytes / 1024 ** 2, 0)} MB)`);
  await publishArchive(ctx.deps, src, cluster.id, [tar]);

  // The bare parts' inputs, made once: the same base backup as a local .tar.gz, the same WAL on local disk.
  const gz = path.join(ctx.tmp, "pitr-base.tar.gz");
  writeFileSync(gz, gzipSync(readFileSync(tar), { level: 1 }));
  const walDir = path.join(ctx.tmp, "pitr-wal");
  mkdirSync(walDir);
  for (const f of readdirSync(src.walDir)) {
    try {
      copyFileSync(path.join(src.walDir, f), path.join(walDir, f));
    } catch (err) {
      // pg_receivewal finished that segment meanwhile: its .partial became the segment.
      if ((err as { code?: string }).code !== "ENOENT" || !f.endsWith(".partial")) throw err;
      copyFileSync(path.join(src.walDir, f.replace(/\.partial$/, "")), path.join(walDir, f.replace(/\.partial$/, "")));
    }
  }
  if (user) execFileSync("chown", ["-R", `${user.uid}:${user.gid}`, walDir]); // the bare server's restore_command reads it
  onCleanup("pitr bare inputs", () => {
    rmSync(gz, { force: true });
    rmSync(walDir, { recursive: true, force: true });
  });

  const admin = new pg.Client({ ...ctx.conn, database: "postgres", ssl: false });
  await admin.connect();
  const made = new Set<string>();
  onCleanup("pitr bench databases", async () => {
    for (const d of made) await admin.query(`DROP DATABASE IF EXISTS ${d} WITH (FORCE)`).catch(() => undefined);
    await admin.end().catch(() => undefined);
  });
  const freshDatabase = async (name: string) => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
    made.add(name);
  };
  const rows = async (db: string) => {
    const c = new pg.Client({ ...ctx.conn, database: db, ssl: false });
    await c.connect();
    try {
      return (await c.query<{ n: string; s: string }>("SELECT count(*)::text AS n, sum(abalance)::text AS s FROM pgbench_accounts")).rows[0]!;
    } finally {
      await c.end();
    }
  };

  /** The service's point-in-time restore, into a database of the bench's PostgreSQL. */
  const serviceRound = async () => {
    await freshDatabase("pitr_bench_service");
    const t = await timed(() =>
      restoreDatabaseToTime({
        deps: ctx.deps,
        clusterId: cluster.id,
        cluster: src.conn,
        database: "bench",
        time,
        into: ctx.conn,
        intoDatabase: "pitr_bench_service",
        signal: new AbortController().signal,
        archiveWaitSeconds: 0,
        ...(process.env.BENCH_PITR_VERBOSE ? { progress: (line: string) => ctx.log(`pitr:   ${line}`) } : {}),
        workRoot: path.join(ctx.tmp, "pitr-recovery"),
      }),
    );
    return { ms: t.ms, result: t.result, rows: await rows("pitr_bench_service") };
  };

  /** The bare parts, on the same files from local disk. */
  const bareRound = async () => {
    await freshDatabase("pitr_bench_bare");
    const bare = path.join(ctx.tmp, "pitr-bare");
    const data = path.join(bare, "data");
    mkdirSync(data, { recursive: true, mode: 0o700 });
    const extract = await timed(() => run("tar", ["-xzf", gz, "-C", data]));
    let instance: Awaited<ReturnType<typeof bareReplay>> | undefined;
    const socket = prepareBare(bare, walDir, time, user);
    const replay = await timed(async () => (instance = await bareReplay(bare, socket, user)));
    onCleanup("pitr bare instance", () => instance?.stop());
    const tools = await pickPgTools({ major: 15, text: "15" }, []);
    const copy = await timed(async () => {
      const dump = trackChild(spawn(tools.pgDump, ["-Fc", "-Z0", "-h", instance!.socket, "-U", src.conn.user, "bench"], { stdio: ["ignore", "pipe", "pipe"] }));
      const restore = trackChild(
        spawn(tools.pgRestore, ["--no-owner", "--no-acl", "--exit-on-error", "-d", "pitr_bench_bare"], {
          stdio: ["pipe", "ignore", "pipe"],
          env: { ...process.env, PGHOST: ctx.conn.host, PGPORT: String(ctx.conn.port), PGUSER: ctx.conn.user, PGPASSWORD: ctx.conn.password },
        }),
      );
      dump.stdout!.pipe(restore.stdin!);
      const codes = await Promise.all([dump, restore].map((c) => new Promise<number | null>((res) => c.once("close", res))));
      if (codes.some((c) => c !== 0)) throw new Error(`bare pg_dump | pg_restore failed: ${codes.join(", ")}`);
    });
    await instance!.stop();
    rmSync(bare, { recursive: true, force: true });
    return { extract: extract.ms, replay: replay.ms, copy: copy.ms, sum: extract.ms + replay.ms + copy.ms, rows: await rows("pitr_bench_bare") };
  };

  // Rounds interleaved, each side first in turn (neither always finds the other's leftovers in the
  // page cache or the disk's queue); the ratio is the median of the rounds' ratios.
  const rounds = ctx.repeat > 1 ? ctx.repeat : ctx.quick ? 1 : 3;
  const results: { service: Awaited<ReturnType<typeof serviceRound>>; bare: Awaited<ReturnType<typeof bareRound>>; ratio: number }[] = [];
  for (let i = 0; i < rounds; i++) {
    ctx.log(
      `pitr: round ${i + 1} of ${rounds}: the service's restore (S3 -> recovery instance -> pg_dump | pg_restore) and the bare parts (tar -xzf, postgres replaying from local disk, pg_dump | pg_restore)`,
    );
    let service: Awaited<ReturnType<typeof serviceRound>>;
    let bareParts: Awaited<ReturnType<typeof bareRound>>;
    if (i % 2 === 0) {
      service = await serviceRound();
      bareParts = await bareRound();
    } else {
      bareParts = await bareRound();
      service = await serviceRound();
    }
    // Both restored the same rows.
    if (service.rows.n !== bareParts.rows.n || service.rows.s !== bareParts.rows.s) {
      throw new Error(`the service's restore and the bare replay differ: ${JSON.stringify(service.rows)} vs ${JSON.stringify(bareParts.rows)}`);
    }
    results.push({ service, bare: bareParts, ratio: service.ms / bareParts.sum });
  }
  const ordered = [...results].sort((a, b) => a.ratio - b.ratio);
  const mid = ordered[Math.floor(ordered.length / 2)]!;
  const ratio = mid.ratio;
  const r = mid.service.result;
  const service = mid.service;
  const { extract, replay, copy, sum } = mid.bare;
  const figures = {
    pitr: {
      ratio: round(ratio, 3),
      rounds: results.map((x) => round(x.ratio, 3)),
      ms: Math.round(service.ms),
      parts_ms: { extract: Math.round(r.timings.extractMs), replay: Math.round(r.timings.replayMs), copy: Math.round(r.timings.copyMs) },
      bare_ms: { extract: Math.round(extract), replay: Math.round(replay), copy: Math.round(copy), sum: Math.round(sum) },
      database_mb: round(dbBytes / 1024 ** 2, 1),
      wal_replayed_mb: round(walBytes / 1024 ** 2, 1),
      wal_segments_fetched: r.walSegments,
      s_per_db_gb: round(service.ms / 1000 / (dbBytes / GB), 1),
      replay_s_per_wal_gb: round(r.timings.replayMs / 1000 / (walBytes / GB), 1),
      bare_replay_s_per_wal_gb: round(replay / 1000 / (walBytes / GB), 1),
      rows: Number(mid.service.rows.n),
      scale,
    },
  };
  const checks: Check[] = [{ key: "pitr.ratio", value: round(ratio, 3), target: "<= 1.3", pass: ratio <= 1.3 }];
  const s = (ms: number) => `${round(ms / 1000, 1)} s`;
  return {
    figures,
    checks,
    rows: [
      [
        `pitr restore (${round(dbBytes / 1024 ** 2, 0)} MB db, ${round(walBytes / 1024 ** 2, 0)} MB WAL)`,
        `${s(service.ms)} (extract ${s(r.timings.extractMs)}, replay ${s(r.timings.replayMs)}, copy ${s(r.timings.copyMs)})`,
        `bare sum ${s(sum)} (tar ${s(extract)}, replay ${s(replay)}, copy ${s(copy)})`,
        `${round(ratio, 2)}x${results.length > 1 ? ` (median of ${results.map((x) => round(x.ratio, 2)).join(", ")})` : ""}`,
        "<= 1.3x",
        ratio <= 1.3 ? "PASS" : "FAIL",
      ],
      [
        "pitr per GB",
        `${figures.pitr.s_per_db_gb} s/GB of database; replay ${figures.pitr.replay_s_per_wal_gb} s/GB of WAL`,
        `bare replay ${figures.pitr.bare_replay_s_per_wal_gb} s/GB of WAL`,
        "",
        "",
        "",
      ],
    ],
  };
}
