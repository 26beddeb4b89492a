import { spawn, spawnSync, execFileSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { userInfo } from "node:os";
import { waitFor } from "./wait.ts";

export class MissingDependencyError extends Error {
  override name = "MissingDependencyError";
}

/** Directory of the newest installed PostgreSQL server binaries (Debian layout first, then PATH). */
export function findPostgresBinDir(): string {
  const fromEnv = process.env.CAPYDB_PG_SERVER_BIN;
  if (fromEnv) {
    if (existsSync(join(fromEnv, "postgres")) && existsSync(join(fromEnv, "initdb"))) return fromEnv;
    throw new MissingDependencyError(
      `PostgreSQL server binaries not found in CAPYDB_PG_SERVER_BIN=${fromEnv}: install them with \`apt-get install postgresql\``,
    );
  }
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    const majors = readdirSync(debian)
      .filter((d) => /^\d+$/.test(d) && existsSync(join(debian, d, "bin", "postgres")))
      .sort((a, b) => Number(b) - Number(a));
    if (majors[0]) return join(debian, majors[0], "bin");
  }
  try {
    const initdb = execFileSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" }).trim();
    if (initdb) return initdb.replace(/\/initdb$/, "");
  } catch {
    // fall through
  }
  throw new MissingDependencyError("PostgreSQL server binaries not found: install them with `apt-get install postgresql` (or set CAPYDB_PG_SERVER_BIN)");
}

/** PostgreSQL refuses to run as root: run it as the `postgres` system user then. */
function runAs(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    return { uid, gid };
  } catch {
    throw new MissingDependencyError("running as root needs a `postgres` system user to run PostgreSQL: `apt-get install postgresql` creates it");
  }
}

/** True when `uid` can enter every directory on the way to `dir` (its parent must exist). */
function canReach(dir: string, owner: { uid: number; gid: number }): boolean {
  return spawnSync("sh", ["-c", 'cd "$1"', "sh", dir], { ...owner, stdio: "ignore" }).status === 0;
}

/**
 * Where the server's data actually lives. As root, PostgreSQL runs as `postgres`, which cannot
 * enter a private directory such as /root or a mode-700 checkout: then the data goes to
 * /var/lib/capydb/<hash of the path>/postgres, owned by `postgres`, and `dataDir` becomes a
 * symlink to it, so `.capydb/postgres` still names the cluster and a restart finds its data.
 */
function reachableDataDir(dataDir: string, owner: { uid: number; gid: number }): string {
  mkdirSync(dirname(dataDir), { recursive: true });
  const real = existsSync(dataDir) ? realpathSync(dataDir) : dataDir;
  if (canReach(dirname(real), owner)) return real;
  const relocated = join(process.env.CAPYDB_PG_RELOCATE_DIR ?? "/var/lib/capydb", createHash("sha256").update(resolve(dataDir)).digest("hex").slice(0, 16));
  mkdirSync(relocated, { recursive: true, mode: 0o755 });
  chownSync(relocated, owner.uid, owner.gid);
  const target = join(relocated, "postgres");
  if (!existsSync(dataDir)) symlinkSync(target, dataDir);
  else if (!lstatSync(dataDir).isSymbolicLink()) {
    throw new MissingDependencyError(
      `PostgreSQL (running as the postgres user) cannot reach ${dataDir}: make its parent directories searchable (chmod o+x) or move the checkout`,
    );
  }
  if (!canReach(relocated, owner)) {
    throw new MissingDependencyError(`PostgreSQL (running as the postgres user) cannot reach ${relocated}: make it searchable (chmod o+x)`);
  }
  return target;
}

export interface PostgresServer {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Superuser URL (contains the password: never log it). */
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  dataDir: string;
  port: number;
  password: string;
  user?: string;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string>;
  /**
   * Its own process group: a Ctrl-C in the terminal then reaches only the service, which stops the
   * server after what uses it (`npm start`). Tests leave it in theirs, so that it dies with them.
   */
  ownProcessGroup?: boolean;
}

/**
 * Starts a PostgreSQL cluster in `dataDir` (initdb on first use, password auth), listening on
 * 127.0.0.1 only. The server is a direct child process: `stop()` shuts it down fast and waits.
 */
export async function startPostgres(opts: StartPostgresOptions): Promise<PostgresServer> {
  const bin = findPostgresBinDir();
  const owner = runAs();
  const user = opts.user ?? "capydb";
  const dataDir = owner ? reachableDataDir(opts.dataDir, owner) : opts.dataDir;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (owner) chownSync(dataDir, owner.uid, owner.gid);
  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    // Beside the data directory: a place the server's user can read.
    const pwfile = join(dataDir, "..", `.pwfile-${process.pid}`);
    writeFileSync(pwfile, opts.password + "\n", { mode: 0o600 });
    if (owner) chownSync(pwfile, owner.uid, owner.gid);
    try {
      execFileSync(
        join(bin, "initdb"),
        ["-D", dataDir, "-U", user, `--pwfile=${pwfile}`, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        { stdio: "pipe", ...owner },
      );
    } catch (err) {
      const e = err as { stderr?: Buffer };
      throw new Error(`initdb failed: ${e.stderr?.toString() ?? String(err)}`);
    } finally {
      rmSync(pwfile, { force: true });
    }
  }
  const settings: Record<string, string> = {
    listen_addresses: "127.0.0.1",
    port: String(opts.port),
    unix_socket_directories: "",
    fsync: "off",
    max_connections: "200",
    ...opts.settings,
  };
  const args = ["-D", dataDir, ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])];
  const child = spawn(join(bin, "postgres"), args, { stdio: ["ignore", "ignore", "pipe"], detached: opts.ownProcessGroup === true, ...owner });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  const url = `postgres://${user}:${encodeURIComponent(opts.password)}@127.0.0.1:${opts.port}/postgres`;
  const stop = async () => {
    if (!exited) {
      child.kill("SIGINT"); // fast shutdown
      await Promise.race([exit, new Promise((r) => setTimeout(r, 10_000))]);
      if (!exited) child.kill("SIGKILL");
    }
  };
  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`postgres exited: ${stderr.trim().split("\n").slice(-3).join(" ")}`);
        return /ready to accept connections/.test(stderr);
      },
      { timeoutMs: 30_000, what: "PostgreSQL to accept connections" },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { host: "127.0.0.1", port: opts.port, user, password: opts.password, url, process: child, stop };
}
