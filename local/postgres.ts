import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
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
  throw new MissingDependencyError(
    "PostgreSQL server binaries not found: install them with `apt-get install postgresql` (or set CAPYDB_PG_SERVER_BIN)",
  );
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
}

/**
 * Starts a PostgreSQL cluster in `dataDir` (initdb on first use, password auth), listening on
 * 127.0.0.1 only. The server is a direct child process: `stop()` shuts it down fast and waits.
 */
export async function startPostgres(opts: StartPostgresOptions): Promise<PostgresServer> {
  const bin = findPostgresBinDir();
  const owner = runAs();
  const user = opts.user ?? "capydb";
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  if (owner) chownSync(opts.dataDir, owner.uid, owner.gid);
  if (!existsSync(join(opts.dataDir, "PG_VERSION"))) {
    const pwfile = join(opts.dataDir, "..", `.pwfile-${process.pid}`);
    writeFileSync(pwfile, opts.password + "\n", { mode: 0o600 });
    if (owner) chownSync(pwfile, owner.uid, owner.gid);
    try {
      execFileSync(
        join(bin, "initdb"),
        ["-D", opts.dataDir, "-U", user, `--pwfile=${pwfile}`, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
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
  const args = ["-D", opts.dataDir, ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])];
  const child = spawn(join(bin, "postgres"), args, { stdio: ["ignore", "ignore", "pipe"], ...owner });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => { exited = true; resolve(); }));
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
