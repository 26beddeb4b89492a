import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, existsSync, readFileSync, readdirSync } from "node:fs";
import { chmod, chown, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import type { ClusterConnection } from "./pgconn.ts";
import { extractBaseBackup, type ExtractResult } from "./basebackup-extract.ts";
import { restoreCommandScript, WalSpool, type WalSource } from "./wal-spool.ts";

const run = promisify(execFile);

/**
 * A throwaway PostgreSQL server recovered to a point in time: a base backup extracted into a
 * private directory, WAL replayed from the archive up to `recovery_target_time`, then promoted.
 * Never a customer's cluster: it listens on a private Unix socket only (no TCP), trusts only that
 * socket, and everything it is lives under one directory that `stop()` removes.
 *
 * PostgreSQL cannot recover one database of a cluster to a time (the WAL is the cluster's), so a
 * point-in-time restore of a project is this instance plus a copy of the project's database out of
 * it (copy.ts).
 */

export class RecoveryError extends Error {
  override name = "RecoveryError";
  constructor(
    message: string,
    /** What failed: the backup, the archive (a missing or corrupt segment), or the server. */
    readonly stage: "base_backup" | "archive" | "server" | "interrupted",
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface RecoveryOptions {
  /** The base backup's tar stream (decompressed), read once while it is extracted. */
  baseBackup: () => Promise<Readable>;
  /** The backup's manifest when it is stored beside the tar (pg_basebackup -D - puts it inside). */
  manifest?: Buffer;
  wal: WalSource;
  /**
   * The segment replay starts from (the one holding the base backup's start LSN): fetched, with
   * the ones after it, while the base backup is extracted, so replay does not start by waiting.
   */
  firstSegment?: string;
  /**
   * Where replay stops: after the last commit at or before `time` (PostgreSQL stops before the
   * first commit after it, so the archive must hold one), or right after the restore point `name`
   * (`pg_create_restore_point`).
   */
  target: RecoveryTarget;
  /** Databases restored in full (pgBackRest's --db-include); unset: the whole cluster. */
  includeDatabaseOids?: readonly number[];
  /**
   * Also check the extracted copy with PostgreSQL's own `pg_verifybackup` (against the manifest,
   * WAL not parsed: replay reads it) before the server starts: the daily drill does, so the tool
   * itself looks at base backups that the pipeline checks as they stream. Whole cluster only
   * (databases left out are holes, which it would rightly refuse).
   */
  verifyWithPgVerifybackup?: boolean;
  /** The role clients connect as (it exists in the backup; the private socket trusts it). */
  user: string;
  /** Server installations searched first (`<dir>/postgres` or `<dir>/<major>/bin/postgres`). */
  pgBinDirs?: readonly string[];
  /** Parent of the instance's directory (default `<tmpdir>/capydb-recovery`). */
  workRoot?: string;
  prefetch?: number;
  parallelFetches?: number;
  /** Extra server settings (shared_buffers, ...). */
  settings?: Record<string, string>;
  signal?: AbortSignal;
  /** Progress lines (stage changes, the stop point). */
  onProgress?: (message: string, fields?: Record<string, unknown>) => void;
}

export type RecoveryTarget = { time: Date } | { name: string };

const describe = (t: RecoveryTarget) => ("time" in t ? t.time.toISOString() : `restore point ${t.name}`);

export interface RecoveryInstance {
  dir: string;
  /** Connection over the private socket (no password: the socket is trusted, and only root and the server's user reach it). */
  conn: ClusterConnection;
  /** Server major version (from the backup's PG_VERSION). */
  major: number;
  extract: ExtractResult;
  /** Whether `pg_verifybackup` checked the extracted copy (`verifyWithPgVerifybackup`). */
  verifiedByPgVerifybackup: boolean;
  /** PostgreSQL's own account of where replay stopped ("before commit of transaction 745, time ..."), when it says. */
  stoppedAt: string | undefined;
  timings: { extractMs: number; replayMs: number };
  wal: WalSpool["stats"];
  /** Stops the server (immediately: its data is thrown away) and removes its directory. Never throws. */
  stop(): Promise<void>;
}

const DIR_PREFIX = "r-";

function defaultRoot(): string {
  return join(tmpdir(), "capydb-recovery");
}

/** PostgreSQL refuses to run as root: as root, the instance runs as the `postgres` system user. */
async function serverOwner(): Promise<{ uid: number; gid: number } | undefined> {
  if (userInfo().uid !== 0) return undefined;
  try {
    const [{ stdout: u }, { stdout: g }] = await Promise.all([run("id", ["-u", "postgres"]), run("id", ["-g", "postgres"])]);
    return { uid: Number(u.trim()), gid: Number(g.trim()) };
  } catch {
    throw new RecoveryError("the worker runs as root and there is no `postgres` system user to run the recovery instance as", "server");
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The `postgres` server binary of the backup's major version. */
export async function findServerBinary(major: number, pgBinDirs: readonly string[] = []): Promise<string> {
  const candidates = [
    ...pgBinDirs.flatMap((d) => [join(d, "postgres"), join(d, String(major), "bin", "postgres")]),
    join("/usr/lib/postgresql", String(major), "bin", "postgres"),
    ...(process.env.PATH ?? "")
      .split(":")
      .filter(Boolean)
      .map((d) => join(d, "postgres")),
  ];
  for (const bin of candidates) {
    if (!executable(bin)) continue;
    try {
      const { stdout } = await run(bin, ["--version"], { timeout: 10_000 });
      if (Number(/\(PostgreSQL\)\s+(\d+)/.exec(stdout)?.[1]) === major) return bin;
    } catch {
      // not a working server binary
    }
  }
  throw new RecoveryError(`the base backup is of PostgreSQL ${major}, and no PostgreSQL ${major} server binary is installed where the worker runs`, "server");
}

/** Whether any `postgres` server binary is where the worker runs (a Lambda has none: its restores go to the task). */
export function hasServerBinary(pgBinDirs: readonly string[] = []): boolean {
  const dirs = [...pgBinDirs, "/usr/lib/postgresql", ...(process.env.PATH ?? "").split(":").filter(Boolean)];
  return dirs.some((d) => {
    if (executable(join(d, "postgres"))) return true;
    try {
      return readdirSync(d).some((v) => /^\d+$/.test(v) && executable(join(d, v, "bin", "postgres")));
    } catch {
      return false;
    }
  });
}

function processAlive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/**
 * Removes what a killed worker left under `root`: a directory whose worker process is gone, and
 * its server if one still runs (as the server dies with the worker, normally none does). Safe to
 * call at any time: live instances of live workers are left alone.
 */
export async function sweepRecoveryDirs(root = defaultRoot()): Promise<string[]> {
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return removed;
  }
  for (const name of entries) {
    const m = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    const dir = join(root, name);
    const data = join(dir, "data");
    try {
      const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
      const cmdline = pid > 0 ? readFileSync(`/proc/${pid}/cmdline`, "utf8") : "";
      if (cmdline.includes(data)) process.kill(pid, "SIGKILL");
    } catch {
      // no server left
    }
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

const quoteConf = (v: string) => `'${v.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;

/**
 * The instance's whole configuration: the backup's own postgresql.conf (and .auto.conf) are
 * replaced, since they can name an archive_command, TLS files, preload libraries, a primary to
 * follow or a port, none of which belong on a throwaway copy. Hot standby is off: nobody reads it
 * before promotion, and the primary's connection limits then need not be matched.
 */
function configuration(o: { socketDir: string; restoreCommand: string; target: RecoveryTarget; settings?: Record<string, string> }): string {
  const settings: Record<string, string> = {
    listen_addresses: "",
    port: "5432",
    unix_socket_directories: o.socketDir,
    unix_socket_permissions: "0700",
    restore_command: o.restoreCommand,
    ...("time" in o.target
      ? { recovery_target_time: o.target.time.toISOString().replace("T", " ").replace("Z", "+00") }
      : { recovery_target_name: o.target.name }),
    recovery_target_inclusive: "on",
    recovery_target_action: "promote",
    hot_standby: "off",
    archive_mode: "off",
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "on",
    autovacuum: "off",
    max_connections: "20",
    max_wal_senders: "0",
    max_replication_slots: "0",
    shared_preload_libraries: "",
    shared_buffers: "128MB",
    max_wal_size: "4GB",
    checkpoint_timeout: "1h",
    logging_collector: "off",
    log_destination: "stderr",
    log_line_prefix: "%m ",
    log_min_messages: "log",
    ssl: "off",
    jit: "off",
    ...o.settings,
  };
  return `${Object.entries(settings)
    .map(([k, v]) => `${k} = ${quoteConf(v)}`)
    .join("\n")}\n`;
}

/** Keeps the end of the server's log and notices the lines that tell how recovery goes. */
class ServerLog {
  private text = "";
  ready = false;
  stoppedAt: string | undefined;
  lastTransaction: string | undefined;
  constructor(private readonly onLine?: (line: string) => void) {}
  private partial = "";
  push(chunk: Buffer): void {
    const lines = (this.partial + chunk.toString()).split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) {
      this.text = `${this.text}${line}\n`.slice(-16_000);
      const stop = /recovery stopping (.*)$/.exec(line);
      if (stop) this.stoppedAt = stop[1]!.trim();
      const last = /last completed transaction was at log time (.*)$/.exec(line);
      if (last) this.lastTransaction = last[1]!.trim();
      if (/database system is ready to accept connections/.test(line)) this.ready = true;
      if (/FATAL|PANIC|recovery stopping|archive recovery complete|selected new timeline/.test(line)) this.onLine?.(line);
    }
  }
  fatal(): string | undefined {
    const line = this.text
      .split("\n")
      .reverse()
      .find((l) => /FATAL|PANIC/.test(l));
    return line?.replace(/^.*?(FATAL|PANIC):\s*/, "");
  }
  tail(): string {
    return this.text;
  }
}

/**
 * Extracts the base backup, replays WAL to the target time and waits for promotion; the caller
 * copies what it needs out of the returned instance and then calls `stop()`. Any failure on the
 * way stops and removes everything before it throws; the server also dies with the worker's
 * process (parent-death signal), and `sweepRecoveryDirs` removes a dead worker's directory.
 */
export async function startRecoveryInstance(o: RecoveryOptions): Promise<RecoveryInstance> {
  const root = o.workRoot ?? defaultRoot();
  const owner = await serverOwner();
  await mkdir(root, { recursive: true, mode: 0o711 });
  await chmod(root, 0o711); // the server's user must pass through to its own directory
  await sweepRecoveryDirs(root).catch(() => undefined);
  const dir = join(root, `${DIR_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}`);
  const data = join(dir, "data");
  const socketDir = join(dir, "sock");
  const spoolDir = join(dir, "spool");
  const progress = o.onProgress ?? (() => undefined);
  let child: ChildProcess | undefined;
  let spool: WalSpool | undefined;
  let exited: Promise<void> | undefined;
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await spool?.stop().catch(() => undefined);
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGQUIT"); // immediate shutdown: the data is discarded anyway
      const killed = await Promise.race([exited!.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5_000))]);
      if (!killed) {
        child.kill("SIGKILL");
        await exited;
      }
    }
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  const onAbort = () => void stop();
  o.signal?.addEventListener("abort", onAbort, { once: true });
  const interrupted = () => new RecoveryError("the point-in-time recovery was interrupted", "interrupted");

  try {
    await mkdir(dir, { mode: 0o700 });
    await mkdir(data, { mode: 0o700 });
    await mkdir(socketDir, { mode: 0o700 });

    // The spool starts first: the WAL replay begins with is fetched while the backup is extracted.
    spool = new WalSpool({ dir: spoolDir, source: o.wal, prefetch: o.prefetch ?? 8, parallel: o.parallelFetches ?? 4, owner });
    await spool.start();
    if (o.firstSegment) spool.warm(o.firstSegment);

    // 1. The base backup, checked against its manifest on the way.
    const t0 = Date.now();
    progress("extracting the base backup");
    let extract: ExtractResult;
    try {
      extract = await extractBaseBackup(await o.baseBackup(), data, { includeDatabaseOids: o.includeDatabaseOids, manifest: o.manifest, signal: o.signal });
    } catch (err) {
      if (o.signal?.aborted) throw interrupted();
      if (err instanceof RecoveryError) throw err;
      throw new RecoveryError(`the base backup could not be restored: ${(err as Error).message}`, "base_backup", { cause: err });
    }
    const extractMs = Date.now() - t0;
    const major = Number(extract.pgVersion.split(".")[0]);
    const bin = await findServerBinary(major, o.pgBinDirs);
    let verifiedByPgVerifybackup = false;
    if (o.verifyWithPgVerifybackup) {
      if (o.includeDatabaseOids) throw new Error("pg_verifybackup checks a whole cluster's copy: do not combine it with includeDatabaseOids");
      progress("checking the base backup with pg_verifybackup");
      const manifestPath = join(dir, "backup_manifest");
      await writeFile(manifestPath, extract.manifestBytes, { mode: 0o600 });
      try {
        await run(join(dirname(bin), "pg_verifybackup"), ["--no-parse-wal", "--quiet", "--manifest-path", manifestPath, data], { signal: o.signal });
      } catch (err) {
        if (o.signal?.aborted) throw interrupted();
        const stderr = String((err as { stderr?: unknown }).stderr ?? (err as Error).message).trim();
        throw new RecoveryError(`pg_verifybackup refused the base backup: ${stderr.split("\n")[0] ?? "no reason given"}`, "base_backup", { cause: err });
      }
      verifiedByPgVerifybackup = true;
    }

    await rm(join(data, "standby.signal"), { force: true });
    await rm(join(data, "postgresql.auto.conf"), { force: true });
    for (const stale of ["postmaster.pid", "postmaster.opts"]) await rm(join(data, stale), { force: true });
    await mkdir(join(data, "pg_wal", "archive_status"), { recursive: true, mode: 0o700 });
    const script = join(dir, "restore_command.sh");
    await writeFile(script, restoreCommandScript(spoolDir, process.pid), { mode: 0o755 });
    await writeFile(join(data, "postgresql.conf"), configuration({ socketDir, restoreCommand: `${script} %f %p`, target: o.target, settings: o.settings }), {
      mode: 0o600,
    });
    await writeFile(join(data, "pg_hba.conf"), "# the recovery instance: its private socket only\nlocal all all trust\n", { mode: 0o600 });
    await writeFile(join(data, "pg_ident.conf"), "", { mode: 0o600 });
    await writeFile(join(data, "recovery.signal"), "", { mode: 0o600 });
    if (owner) {
      // Not the spool: it owns its files already, and is writing them meanwhile.
      await chown(dir, owner.uid, owner.gid);
      await run("chown", ["-R", `${owner.uid}:${owner.gid}`, data, socketDir]);
      // The script stays root's: the server's user runs it, cannot change it.
    }
    if (o.signal?.aborted) throw interrupted();

    // 2. Replay: the spool serves the archive's segments, fetched ahead of replay.
    const log = new ServerLog((line) => progress("recovery", { line: line.replace(/^\S+ \S+ \S+ /, "") }));
    const t1 = Date.now();
    progress("replaying WAL", { target: describe(o.target) });
    // setpriv --pdeathsig: the server is killed when the worker's process dies, whatever kills it.
    const usePdeath = executable("/usr/bin/setpriv");
    const cmd = usePdeath ? "/usr/bin/setpriv" : bin;
    const args = [...(usePdeath ? ["--pdeathsig", "KILL", "--", bin] : []), "-D", data];
    const proc = spawn(cmd, args, {
      stdio: ["ignore", "ignore", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C", LANG: "C" },
      ...owner,
    });
    child = proc;
    exited = new Promise<void>((resolve) => proc.once("close", () => resolve()));
    proc.stderr!.on("data", (d: Buffer) => log.push(d));
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        if (o.signal?.aborted) done(interrupted());
        else if (log.ready) done();
      }, 50);
      const done = (err?: Error) => {
        clearInterval(poll);
        if (err) reject(err);
        else resolve();
      };
      void exited!.then(() => {
        if (o.signal?.aborted) return done(interrupted());
        done(explainExit(log, spool!, describe(o.target)));
      });
    });
    const replayMs = Date.now() - t1;
    progress("promoted", { stopped: log.stoppedAt, replay_ms: replayMs, segments: spool.stats.fetched });
    await spool.stop();
    return {
      dir,
      // A throwaway server of our own on a Unix socket: no TLS to verify there.
      conn: { host: socketDir, port: 5432, user: o.user, password: "", adminDatabase: "postgres", sslmode: "disable", insecureTls: true },
      major,
      extract,
      verifiedByPgVerifybackup,
      stoppedAt: log.stoppedAt,
      timings: { extractMs, replayMs },
      wal: spool.stats,
      stop: async () => {
        o.signal?.removeEventListener("abort", onAbort);
        await stop();
      },
    };
  } catch (err) {
    o.signal?.removeEventListener("abort", onAbort);
    await stop();
    throw err;
  }
}

/** Why the server exited before it was ready, in words about the archive rather than the server. */
function explainExit(log: ServerLog, spool: WalSpool, target: string): RecoveryError {
  const failure = spool.failure;
  if (failure) return new RecoveryError(`WAL needed to reach ${target} could not be read from the archive: ${failure.message}`, "archive", { cause: failure });
  const fatal = log.fatal() ?? "the server exited during recovery";
  if (/recovery ended before configured recovery target was reached/.test(fatal)) {
    return new RecoveryError(
      `the WAL archive ends before ${target}${log.lastTransaction ? ` (its last transaction is at ${log.lastTransaction})` : ""}: the time is not restorable yet`,
      "archive",
    );
  }
  if (/requested recovery stop point is before consistent recovery point/.test(fatal)) {
    return new RecoveryError(`${target} is before the end of the base backup used: choose a later time or an older base backup`, "base_backup");
  }
  return new RecoveryError(`the recovery instance failed: ${fatal}`, "server");
}
