import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { localTaskId, taskEnv, TaskLaunchError, type TaskLauncher } from "./launcher.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface LocalTaskLauncher extends TaskLauncher {
  /** Pids of the tasks started and not yet exited. */
  running(): number[];
  /** Resolves with the exit code (or signal) once the task with this pid has exited. */
  exited(pid: number): Promise<number | string | null>;
  /** Kills every running task (SIGTERM, then SIGKILL after `graceMs`): `npm start`'s Ctrl-C. */
  stopAll(graceMs?: number): Promise<void>;
}

/**
 * "Fargate" on this machine: each task is a child process running functions/task.ts (through tsx,
 * as `npm start` runs everything) with the job's variables added to `env`. It is the leader of its
 * own process group, so killing the group takes its pg_dump/pg_restore with it, as a stopped
 * Fargate task would.
 */
export function localTaskLauncher(
  opts: {
    /** The service's environment (table, queue, bucket, key, PostgreSQL tools); default process.env. */
    env?: NodeJS.ProcessEnv;
    /** Default: functions/task.ts of this checkout. */
    entry?: string;
    /** Task output: inherited by default (npm start shows task log lines beside the worker's). */
    stdio?: "inherit" | "ignore";
  } = {},
): LocalTaskLauncher {
  const children = new Map<number, { child: ChildProcess; exit: Promise<number | string | null> }>();
  const exits = new Map<number, Promise<number | string | null>>();
  const entry = opts.entry ?? path.join(repoRoot, "functions", "task.ts");
  return {
    kind: "local",
    async launch(input) {
      const child = spawn(process.execPath, ["--import", "tsx", entry], {
        cwd: repoRoot,
        env: { ...(opts.env ?? process.env), ...taskEnv(input) },
        stdio: ["ignore", opts.stdio ?? "inherit", opts.stdio ?? "inherit"],
        detached: true,
      });
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", (err) => reject(new TaskLaunchError(`could not start the task process: ${err.message}`)));
      });
      const pid = child.pid!;
      const exit = new Promise<number | string | null>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
      children.set(pid, { child, exit });
      exits.set(pid, exit);
      void exit.then(() => children.delete(pid));
      return { taskId: localTaskId(pid) };
    },
    running: () => [...children.keys()],
    async exited(pid) {
      return (await exits.get(pid)) ?? null;
    },
    async stopAll(graceMs = 5000) {
      const all = [...children.entries()];
      const kill = (pid: number, signal: NodeJS.Signals) => {
        try {
          process.kill(-pid, signal);
        } catch {
          // already gone
        }
      };
      for (const [pid] of all) kill(pid, "SIGTERM");
      await Promise.all(
        all.map(([pid, c]) =>
          Promise.race([c.exit, new Promise((r) => setTimeout(r, graceMs).unref())]).then(() => {
            if (children.has(pid)) kill(pid, "SIGKILL");
          }),
        ),
      );
    },
  };
}
