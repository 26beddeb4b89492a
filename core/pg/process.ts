import { spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { redact, tail } from "../redact.ts";
import type { ToolReport } from "./classify.ts";

/** Keeps the end of a stream's text (a few KiB reach the API; the rest is noise). */
class TailBuffer {
  private text = "";
  constructor(private readonly max = 64 * 1024) {}
  push(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > this.max * 2) this.text = this.text.slice(-this.max);
  }
  toString(): string {
    return this.text.slice(-this.max);
  }
}

export interface ToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (ENOENT, EACCES). */
  spawnError?: Error;
}

export interface Tool {
  stdin: Writable;
  stdout: Readable;
  exited: Promise<ToolExit>;
  kill(): void;
  /** The run's report: exit code, stdout tail (unless it was the data), stderr tail; redacted, <= 4 KiB each. */
  report(exit: ToolExit, stdoutNote?: string): ToolReport;
}

/**
 * Starts a PostgreSQL client tool: no shell, argv free of secrets, the password only in the
 * child's environment (`env`, built by `toolEnv`). stderr is kept (tail) for the job report;
 * stdout is either the data stream (pg_dump) or kept like stderr (`keepStdout`).
 */
export function startTool(path: string, args: string[], env: NodeJS.ProcessEnv, opts: { secrets: string[]; keepStdout?: boolean }): Tool {
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(path, args, { env, stdio: ["pipe", "pipe", "pipe"], shell: false });
  const stderr = new TailBuffer();
  const stdout = new TailBuffer();
  child.stderr.on("data", (d: Buffer) => stderr.push(d));
  if (opts.keepStdout) child.stdout.on("data", (d: Buffer) => stdout.push(d));
  // A tool that exits early (pg_restore --exit-on-error) closes its stdin: not our error to throw.
  child.stdin.on("error", () => undefined);
  const exited = new Promise<ToolExit>((resolve) => {
    let spawnError: Error | undefined;
    child.once("error", (err) => {
      spawnError = err;
      resolve({ code: null, signal: null, spawnError: err });
    });
    child.once("close", (code, signal) => resolve({ code, signal, spawnError }));
  });
  const clean = (text: string) => tail(redact(text, opts.secrets), 4096);
  return {
    stdin: child.stdin,
    stdout: child.stdout,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
    report: (exit, stdoutNote) => ({
      exitCode: exit.code ?? (exit.signal ? 128 + signalNumber(exit.signal) : null),
      stdout: stdoutNote ?? clean(stdout.toString()),
      stderr: clean(exit.spawnError ? `${stderr.toString()}${String(exit.spawnError.message)}` : stderr.toString()),
    }),
  };
}

function signalNumber(signal: NodeJS.Signals): number {
  const n: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGPIPE: 13, SIGTERM: 15 };
  return n[signal] ?? 0;
}
