import { execFile } from "node:child_process";
import { accessSync, constants, readdirSync, realpathSync } from "node:fs";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { WorkerFailure } from "./classify.ts";

const run = promisify(execFile);

/** One installation of the client tools: pg_dump and pg_restore of the same version. */
export interface PgTools {
  major: number;
  /** `pg_dump --version`'s number, e.g. "15.18". */
  version: string;
  pgDump: string;
  pgRestore: string;
}

/** Debian/Ubuntu's layout: /usr/lib/postgresql/<major>/bin. */
const DEBIAN_DIR = "/usr/lib/postgresql";

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function binDirsUnder(root: string): string[] {
  try {
    return readdirSync(root)
      .filter((d) => /^\d+$/.test(d))
      .map((d) => join(root, d, "bin"));
  } catch {
    return [];
  }
}

/** Asks the binary itself: a directory's name can lie, `pg_dump --version` does not. */
async function probe(dir: string): Promise<PgTools | undefined> {
  const pgDump = join(dir, "pg_dump");
  const pgRestore = join(dir, "pg_restore");
  if (!executable(pgDump) || !executable(pgRestore)) return undefined;
  try {
    const { stdout } = await run(pgDump, ["--version"], { timeout: 10_000, env: { PATH: process.env.PATH ?? "", LC_ALL: "C" } });
    const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(stdout);
    if (!m) return undefined;
    return { major: Number(m[1]), version: m[2] ? `${m[1]}.${m[2]}` : m[1]!, pgDump, pgRestore };
  } catch {
    return undefined;
  }
}

const cache = new Map<string, Promise<PgTools[]>>();

/**
 * Every installation found, in preference order: the configured directories (`<dir>/<major>/bin`,
 * or `<dir>` itself when it holds pg_dump), Debian's, then PATH. Probed once per process.
 */
export function installedPgTools(pgBinDirs: readonly string[]): Promise<PgTools[]> {
  const key = [...pgBinDirs, "|", process.env.PATH ?? ""].join("\0");
  let found = cache.get(key);
  if (!found) {
    found = (async () => {
      const dirs = [
        ...pgBinDirs.flatMap((d) => [d, ...binDirsUnder(d)]),
        ...binDirsUnder(DEBIAN_DIR),
        ...(process.env.PATH ?? "").split(delimiter).filter(Boolean),
      ];
      const seen = new Set<string>();
      const out: PgTools[] = [];
      for (const dir of dirs) {
        const pgDump = join(dir, "pg_dump");
        if (!executable(pgDump)) continue;
        let real: string;
        try {
          real = realpathSync(pgDump);
        } catch {
          continue;
        }
        if (seen.has(real)) continue;
        seen.add(real);
        const tools = await probe(dir);
        if (tools) out.push(tools);
      }
      return out;
    })();
    cache.set(key, found);
    found.catch(() => cache.delete(key));
  }
  return found;
}

/**
 * The pg_dump/pg_restore pair for a server: the lowest major that is at least the server's (a
 * newer pg_dump reads older servers, but its output can use syntax an older server - where the
 * verification restores - does not accept), preferring earlier directories on a tie. None fits:
 * a permanent failure naming both versions.
 */
export async function pickPgTools(server: { major: number; text: string }, pgBinDirs: readonly string[]): Promise<PgTools> {
  const all = await installedPgTools(pgBinDirs);
  const fit = all.filter((t) => t.major >= server.major);
  const best = fit.reduce<PgTools | undefined>((a, t) => (!a || t.major < a.major ? t : a), undefined);
  if (best) return best;
  const versions = [...new Set(all.map((t) => t.version))].join(", ") || "none";
  throw new WorkerFailure(
    "permanent",
    `The database server runs PostgreSQL ${server.text}, but no pg_dump of version ${server.major} or newer is available (installed: ${versions}).`,
  );
}

/** "15.18" -> [15, 18]; "9.6.24" -> [9, 6]. */
function versionParts(v: string): [number, number] {
  const [a, b] = v.split(".").map(Number);
  return [a ?? 0, b ?? 0];
}
const atLeast = (v: string, min: string) => {
  const [a, b] = versionParts(v);
  const [c, d] = versionParts(min);
  return a > c || (a === c && b >= d);
};

/**
 * The pg_restore for an artifact: never older than the pg_dump that wrote it (an older
 * pg_restore cannot read a newer archive), the lowest such major, then the newest minor.
 */
export async function pickRestoreTools(dumpVersion: string, pgBinDirs: readonly string[]): Promise<PgTools> {
  const all = await installedPgTools(pgBinDirs);
  const fit = all.filter((t) => atLeast(t.version, dumpVersion));
  const best = fit.reduce<PgTools | undefined>((x, t) => {
    if (!x) return t;
    if (t.major !== x.major) return t.major < x.major ? t : x;
    // Newest minor; on a tie the earlier directory (the configured ones come first).
    return atLeast(t.version, x.version) && t.version !== x.version ? t : x;
  }, undefined);
  if (best) return best;
  const versions = [...new Set(all.map((t) => t.version))].join(", ") || "none";
  throw new WorkerFailure(
    "permanent",
    `The backup was written by pg_dump ${dumpVersion}, but no pg_restore of that version or newer is available (installed: ${versions}).`,
  );
}
