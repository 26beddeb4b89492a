import type { ChildProcess } from "node:child_process";

/**
 * Everything the bench starts registers its undo here; `runCleanup` undoes it in reverse order.
 * SIGINT/SIGTERM and uncaught failures run it too, so neither Ctrl-C nor a crash leaves a
 * PostgreSQL, a DynamoDB Local, a child process or a temp dir behind.
 */
const undo: { what: string; fn: () => Promise<void> | void }[] = [];
const children = new Set<ChildProcess>();
let cleaning: Promise<void> | undefined;

export function onCleanup(what: string, fn: () => Promise<void> | void): void {
  undo.push({ what, fn });
}

/** Tracks a child process: killed (SIGKILL) at cleanup if still running. */
export function trackChild(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

export function runCleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    for (const { what, fn } of undo.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`bench: cleanup of ${what} failed: ${String(err)}`);
      }
    }
    undo.length = 0;
  })();
  return cleaning;
}

export function installSignalHandlers(): void {
  let signalled = false;
  const stop = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    console.error(`\nbench: ${signal}, cleaning up...`);
    void runCleanup().finally(() => process.exit(130));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  process.on("SIGHUP", stop);
}
