import pg from "pg";
import { createReadStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync, spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyDatabase } from "../../core/pg/copy-database.ts";
import { RecoveryError, startRecoveryInstance, sweepRecoveryDirs, type RecoveryInstance } from "../../core/pg/recovery.ts";
import { WorkerFailure } from "../../core/pg/classify.ts";
import { startArchivedCluster, type ArchivedCluster } from "./archived-cluster.ts";

/**
 * The recovery instance on real parts: a cluster archived by pg_receivewal, a pg_basebackup tar,
 * a throwaway server replaying to a time, and pg_dump | pg_restore of one database out of it.
 */
let src: ArchivedCluster;
let baseTar: string;
let workRoot: string;
let appOid: number;
/** Commit time of each ledger row (id -> ms since epoch, microseconds kept as a fraction). */
let commits: { id: number; at: Date }[] = [];

const failed = (message: string) => new WorkerFailure("permanent", message);
const postgresProcesses = () => {
  try {
    return execFileSync("pgrep", ["-f", workRoot], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
};

beforeAll(async () => {
  workRoot = mkdtempSync(join(tmpdir(), "capydb-recovery-test-"));
  src = await startArchivedCluster();
  await src.query("postgres", "CREATE DATABASE app");
  await src.query("postgres", "CREATE DATABASE other");
  await src.query("other", "CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g");
  await src.query("app", "CREATE TABLE ledger (id int PRIMARY KEY, at timestamptz NOT NULL)");
  appOid = Number((await src.query<{ oid: string }>("postgres", "SELECT oid FROM pg_database WHERE datname = 'app'"))[0]!.oid);
  baseTar = await src.baseBackup();
  // One row per transaction, about every 100 ms; PostgreSQL stops replay at commit records, so
  // each row's commit timestamp (track_commit_timestamp) says exactly which side of a target it is.
  for (let id = 1; id <= 30; id++) {
    await src.query("app", "INSERT INTO ledger VALUES ($1, clock_timestamp())", [id]);
    await new Promise((r) => setTimeout(r, 100));
  }
  const rows = await src.query<{ id: number; at: string }>(
    "app",
    "SELECT id, extract(epoch FROM pg_xact_commit_timestamp(xmin))::text AS at FROM ledger ORDER BY id",
  );
  commits = rows.map((r) => ({ id: r.id, at: new Date(Number(r.at) * 1000) }));
  // A commit after the last target, so replay finds one past it.
  await src.query("app", "CREATE TABLE after_targets (x int)");
  await src.flushWal();
}, 120_000);

afterAll(async () => {
  await src?.stop();
  rmSync(workRoot, { recursive: true, force: true });
});

/** Halfway between the commits of rows `k` and `k+1` (never on a commit: those are microseconds apart from nothing here). */
const between = (k: number) => new Date((commits[k - 1]!.at.getTime() + commits[k]!.at.getTime()) / 2);

async function recover(target: Date, faults?: Parameters<ArchivedCluster["walSource"]>[0], include = true): Promise<RecoveryInstance> {
  return startRecoveryInstance({
    baseBackup: async () => createReadStream(baseTar),
    wal: src.walSource(faults),
    target: { time: target },
    includeDatabaseOids: include ? [appOid] : undefined,
    user: src.conn.user,
    workRoot,
  });
}

/** A query on the recovery instance's `app` database, over its private socket. */
async function queryInstance(inst: RecoveryInstance, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ host: inst.conn.host, port: inst.conn.port, user: inst.conn.user, database: "app" });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe("recovery instance", () => {
  it("restores exactly the rows committed at or before each target time, copied straight into another server's database", async () => {
    for (const k of [3, 17, 29]) {
      const inst = await recover(between(k));
      try {
        expect(inst.stoppedAt, "PostgreSQL reports where replay stopped").toMatch(/before commit of transaction/);
        expect(inst.extract.bytesSkipped, "the other database's files are left as holes").toBeGreaterThan(1_000_000);
        const target = `restored_${k}`;
        await src.query("postgres", `CREATE DATABASE ${target}`);
        const copied = await copyDatabase({
          source: inst.conn,
          sourceDatabase: "app",
          sourceMajor: inst.major,
          target: { ...src.conn, adminDatabase: "postgres" },
          targetDatabase: target,
          pgBinDirs: [],
          signal: new AbortController().signal,
          failed,
        });
        expect(copied.rowCounts["public.ledger"]).toBe(k);
        const rows = await src.query<{ n: string; max: number }>(target, "SELECT count(*) AS n, max(id) AS max FROM ledger");
        expect(rows[0]).toEqual({ n: String(k), max: k });
      } finally {
        await inst.stop();
      }
      expect(existsSync(inst.dir), "the instance's directory is removed").toBe(false);
    }
    expect(postgresProcesses(), "no recovery server is left running").toBe("");
  }, 180_000);

  it("fails with the segment's error when a segment replay needs is corrupt, and leaves nothing behind", async () => {
    const needed = readdirSync(src.walDir)
      .filter((f) => /^[0-9A-F]{24}(\.partial)?$/.test(f))
      .map((f) => f.replace(".partial", ""))
      .sort();
    // The newest segment holds the ledger rows: replay needs it for a target inside them.
    const last = needed.at(-1)!;
    const err = await recover(between(20), { corrupt: new Set([last]) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecoveryError);
    expect((err as RecoveryError).stage).toBe("archive");
    expect((err as Error).message).toContain(`segment ${last} does not match its SHA-256`);
    expect(readdirSync(workRoot)).toEqual([]);
    expect(postgresProcesses()).toBe("");
  }, 120_000);

  it("fails, never promotes early, when the archive ends before the target", async () => {
    const err = await recover(new Date(Date.now() + 3_600_000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecoveryError);
    expect((err as Error).message).toMatch(/the WAL archive ends before .*: the time is not restorable yet/);
    expect(readdirSync(workRoot)).toEqual([]);
  }, 120_000);

  it("has PostgreSQL's pg_verifybackup check a whole cluster's copy before it starts, as the daily drill asks", async () => {
    const inst = await startRecoveryInstance({
      baseBackup: async () => createReadStream(baseTar),
      wal: src.walSource(),
      target: { time: between(7) },
      verifyWithPgVerifybackup: true,
      user: src.conn.user,
      workRoot,
    });
    try {
      expect(inst.verifiedByPgVerifybackup).toBe(true);
      const rows = await queryInstance(inst, "SELECT count(*)::int AS n FROM ledger");
      expect(rows).toEqual([{ n: 7 }]);
    } finally {
      await inst.stop();
    }
    // Left-out databases are holes pg_verifybackup would rightly refuse: the two do not combine.
    await expect(
      startRecoveryInstance({
        baseBackup: async () => createReadStream(baseTar),
        wal: src.walSource(),
        target: { time: between(7) },
        includeDatabaseOids: [appOid],
        verifyWithPgVerifybackup: true,
        user: src.conn.user,
        workRoot,
      }),
    ).rejects.toThrow(/whole cluster/);
    expect(readdirSync(workRoot)).toEqual([]);
  }, 120_000);

  it("refuses a base backup whose bytes do not match its manifest", async () => {
    const { writeFileSync } = await import("node:fs");
    const bytes = readFileSync(baseTar);
    // One byte changed in the middle of the archive (inside a relation file's pages).
    const bad = Buffer.from(bytes);
    const at = Math.floor(bytes.length / 2);
    bad[at] = bad[at]! ^ 0xff;
    const badTar = join(src.dir, "bad.tar");
    writeFileSync(badTar, bad);
    const err = await startRecoveryInstance({
      baseBackup: async () => createReadStream(badTar),
      wal: src.walSource(),
      target: { time: between(5) },
      user: src.conn.user,
      workRoot,
    }).catch((e: unknown) => e);
    if (!(err instanceof Error)) await (err as RecoveryInstance).stop();
    expect(err).toBeInstanceOf(RecoveryError);
    expect((err as RecoveryError).stage).toBe("base_backup");
    expect((err as Error).message).toMatch(/manifest|cut short|unsupported/);
    expect(readdirSync(workRoot)).toEqual([]);
  }, 60_000);
});

describe("a worker killed while it recovers", () => {
  it.each(["fetch", "replay", "copy"])(
    "during the %s: the server dies with it and the sweep removes its directory",
    async (hang) => {
      const child = spawn(join(process.cwd(), "node_modules", ".bin", "tsx"), [join("test", "pg", "fixtures", "recover-child.ts")], {
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          BASE_TAR: baseTar,
          WAL_DIR: src.walDir,
          TARGET: between(10).toISOString(),
          PG_USER: src.conn.user,
          WORK_ROOT: workRoot,
          HANG: hang,
        },
      });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      const stage = ({ fetch: "fetching", replay: "replaying", copy: "copying" } as Record<string, string>)[hang]!;
      for (let i = 0; !output.includes(stage); i++) {
        if (i > 600 || child.exitCode !== null) throw new Error(`the recovering process did not reach the ${hang}: ${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const [dir] = readdirSync(workRoot);
      const postmaster = Number(readFileSync(join(workRoot, dir!, "data", "postmaster.pid"), "utf8").split("\n")[0]);
      // The process that started the server (node under tsx): kill -9 it alone, as an OOM kill would.
      const worker = Number(readFileSync(`/proc/${postmaster}/stat`, "utf8").split(") ")[1]!.split(" ")[1]);
      process.kill(worker, "SIGKILL");
      for (let i = 0; existsSync(`/proc/${postmaster}`); i++) {
        if (i > 100) throw new Error("the recovery server outlived its worker");
        await new Promise((r) => setTimeout(r, 100));
      }
      child.kill("SIGKILL");
      expect(await sweepRecoveryDirs(workRoot)).toEqual([join(workRoot, dir!)]);
      expect(readdirSync(workRoot)).toEqual([]);
      expect(postgresProcesses()).toBe("");
    },
    120_000,
  );
});
