import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { startPostgres, findPostgresBinDir, type PostgresServer } from "../../local/postgres.ts";
import { freePort } from "../../local/wait.ts";
import type { ClusterConnection } from "../../core/pg/pgconn.ts";
import type { WalSource } from "../../core/pg/wal-spool.ts";

/**
 * A real PostgreSQL cluster with its own WAL archive, the way the archive lane keeps one:
 * `pg_receivewal` streaming into a directory (finished segments, and the newest as `.partial`)
 * and a `pg_basebackup -Ft -X none` tar with its manifest. Tests recover from these.
 */
export interface ArchivedCluster {
  server: PostgresServer;
  conn: ClusterConnection;
  dir: string;
  walDir: string;
  /** Takes a base backup now (tar with the manifest inside, from `pg_basebackup -D -`). */
  baseBackup(): Promise<string>;
  /** When each base backup (by file) started and finished. */
  backupTimes: Map<string, { startedAt: Date; finishedAt: Date }>;
  /** Serves segments from the receiver's directory: a finished one, else its `.partial`; `hide`/`corrupt` fake a bad archive. */
  walSource(faults?: { missing?: Set<string>; corrupt?: Set<string> }): WalSource;
  /** Waits until the receiver has written WAL up to the server's current insert position. */
  flushWal(): Promise<void>;
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(database: string, sql: string, params?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

export async function startArchivedCluster(): Promise<ArchivedCluster> {
  const dir = mkdtempSync(join(tmpdir(), "capydb-pitr-src-"));
  chmodSync(dir, 0o755);
  const walDir = join(dir, "wal");
  mkdirSync(walDir);
  const password = randomBytes(12).toString("hex");
  const server = await startPostgres({
    dataDir: join(dir, "postgres"),
    port: await freePort(),
    password,
    settings: { wal_level: "replica", max_wal_senders: "4", max_replication_slots: "4", track_commit_timestamp: "on", fsync: "off" },
  });
  const conn: ClusterConnection = {
    host: "127.0.0.1",
    port: server.port,
    user: server.user,
    password,
    adminDatabase: "postgres",
    sslmode: "disable",
    insecureTls: true,
  };
  const bin = findPostgresBinDir();
  const env = { ...process.env, PGHOST: "127.0.0.1", PGPORT: String(server.port), PGUSER: server.user, PGPASSWORD: password, PGDATABASE: "postgres" };
  const slot = `s_${randomBytes(3).toString("hex")}`;
  await runTool(join(bin, "pg_receivewal"), ["--slot", slot, "--create-slot", "--if-not-exists"], env);
  const receiver: ChildProcess = spawn(join(bin, "pg_receivewal"), ["-D", walDir, "--slot", slot, "--no-loop", "--synchronous"], { env, stdio: "ignore" });

  const query = async <T extends pg.QueryResultRow>(database: string, sql: string, params?: unknown[]) => {
    const c = new pg.Client({ ...conn, database, ssl: false });
    await c.connect();
    try {
      return (await c.query<T>(sql, params)).rows;
    } finally {
      await c.end();
    }
  };

  let backups = 0;
  const backupTimes = new Map<string, { startedAt: Date; finishedAt: Date }>();
  return {
    backupTimes,
    server,
    conn,
    dir,
    walDir,
    query,
    async baseBackup() {
      const file = join(dir, `base-${++backups}.tar`);
      const startedAt = new Date();
      const child = spawn(join(bin, "pg_basebackup"), ["-D", "-", "-Ft", "-X", "none", "--manifest-checksums=SHA256", "--checkpoint=fast"], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let err = "";
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((r) => child.once("close", r));
      await pipeline(child.stdout, createWriteStream(file));
      const code = await exited;
      if (code !== 0) throw new Error(`pg_basebackup failed: ${err}`);
      backupTimes.set(file, { startedAt, finishedAt: new Date() });
      return file;
    },
    walSource(faults = {}) {
      return {
        async fetchSegment(_timeline, segment) {
          if (faults.missing?.has(segment)) throw new Error(`segment ${segment} is missing from the archive (a gap)`);
          const whole = join(walDir, segment);
          const partial = `${whole}.partial`;
          const path = existsSync(whole) ? whole : existsSync(partial) ? partial : undefined;
          if (!path) return undefined;
          const bytes = readFileSync(path);
          if (faults.corrupt?.has(segment)) throw new Error(`segment ${segment} does not match its SHA-256: the archived object is corrupt`);
          return bytes;
        },
      };
    },
    async flushWal() {
      const [row] = await query<{ lsn: string }>("postgres", "SELECT pg_current_wal_insert_lsn()::text AS lsn");
      for (let i = 0; i < 200; i++) {
        const rows = await query<{ ok: boolean }>("postgres", "SELECT coalesce(bool_or(flush_lsn >= $1::pg_lsn), false) AS ok FROM pg_stat_replication", [
          row!.lsn,
        ]);
        if (rows[0]?.ok) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error("pg_receivewal did not catch up");
    },
    async stop() {
      receiver.kill("SIGINT");
      await new Promise((r) => (receiver.exitCode !== null ? r(null) : receiver.once("close", r)));
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function runTool(path: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`${path} failed: ${err}`))));
  });
}
