import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "../core/zod.ts";
import { MissingDependencyError } from "./postgres.ts";

/**
 * `.capydb/children.json`: the processes an `npm start` runs in process groups of their own
 * (PostgreSQL, DynamoDB Local's JVM), each with the command line it had, which names the data
 * directory. A kill -9 of `npm start` leaves them running and holding the ports; the next start
 * reads this file, checks that each id is still that program for that data directory (an id may
 * have been reused since), and stops it.
 */
const entrySchema = z.object({ what: z.string(), pid: z.number().int().positive(), command: z.string() });
const fileSchema = z.object({ service: entrySchema, children: z.array(entrySchema) });
type Entry = z.infer<typeof entrySchema>;

const fileOf = (dir: string) => join(dir, "children.json");

/** The process's full command line as `ps` shows it, or undefined when no such process runs. */
function commandOf(pid: number): string | undefined {
  try {
    const out = execFileSync("ps", ["-ww", "-o", "args=", "-p", String(pid)], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return out || undefined;
  } catch {
    return undefined; // ps exits 1 when the process is gone
  }
}

const entry = (what: string, pid: number | undefined): Entry | undefined => {
  const command = pid ? commandOf(pid) : undefined;
  return pid && command ? { what, pid, command } : undefined;
};

/** Records this service and its children (call once they run); `forgetChildren` on a clean stop. */
export function recordChildren(dir: string, children: { what: string; pid: number | undefined }[]): void {
  const service = entry("npm start", process.pid);
  if (!service) return;
  const file = { service, children: children.map((c) => entry(c.what, c.pid)).filter((e): e is Entry => e !== undefined) };
  writeFileSync(fileOf(dir), JSON.stringify(file, null, 2) + "\n", { mode: 0o600 });
}

export function forgetChildren(dir: string): void {
  rmSync(fileOf(dir), { force: true });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Signals one leftover, then its whole process group if it outlives `graceMs`. */
async function stopOne(e: Entry, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  try {
    process.kill(e.pid, signal);
  } catch {
    return; // gone already
  }
  for (const until = Date.now() + graceMs; Date.now() < until; await sleep(100)) {
    if (commandOf(e.pid) !== e.command) return;
  }
  try {
    process.kill(-e.pid, "SIGKILL"); // its own group (it was started detached): its children too
  } catch {
    process.kill(e.pid, "SIGKILL");
  }
  for (let i = 0; i < 50 && commandOf(e.pid) === e.command; i++) await sleep(100);
}

/**
 * Stops what a previous `npm start` for this data directory left running, and says what it
 * stopped in one line (undefined when there was nothing). A previous service that still runs is
 * not a crash: that is refused, naming its id.
 */
export async function stopLeftovers(dir: string): Promise<string | undefined> {
  const file = fileOf(dir);
  if (!existsSync(file)) return undefined;
  const parsed = fileSchema.safeParse(
    (() => {
      try {
        return JSON.parse(readFileSync(file, "utf8"));
      } catch {
        return undefined;
      }
    })(),
  );
  if (!parsed.success) {
    forgetChildren(dir);
    return undefined;
  }
  const { service, children } = parsed.data;
  if (service.pid !== process.pid && commandOf(service.pid) === service.command) {
    throw new MissingDependencyError(
      `another \`npm start\` (pid ${service.pid}) is running on ${dir}: stop it first (Ctrl-C in its terminal, or \`kill ${service.pid}\`)`,
    );
  }
  // Only processes still running the very command line recorded: same program, same data directory.
  const left = children.filter((c) => commandOf(c.pid) === c.command);
  // PostgreSQL: SIGINT is its fast shutdown (clean, no recovery next start); the JVM: SIGTERM.
  await Promise.all(left.map((c) => stopOne(c, c.what === "PostgreSQL" ? "SIGINT" : "SIGTERM", 10_000)));
  forgetChildren(dir);
  return left.length ? `stopped what the previous run left running: ${left.map((c) => `${c.what} (pid ${c.pid})`).join(", ")}` : undefined;
}
