import { DeleteMessageBatchCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { afterEach, expect } from "vitest";
import type { Deps } from "../../core/deps.ts";
import { runTick } from "../../core/dispatch/handler.ts";
import { createTestEnv, type TestEnv } from "../support/env.ts";

/**
 * A fresh table and queue per test (the dispatcher's watermark is one item per table), cleaned up
 * after each test of the file that calls this.
 */
export function freshEnvs(): () => Promise<TestEnv> {
  const envs: TestEnv[] = [];
  afterEach(async () => {
    await Promise.all(envs.splice(0).map((e) => e.cleanup()));
  });
  return async () => {
    const env = await createTestEnv();
    envs.push(env);
    return env;
  };
}

/** The same dependencies with the clock pinned at `now`. */
export const withClock = (deps: Deps, now: Date): Deps => ({ ...deps, now: () => now });

/** One dispatcher tick at `now`, which must report no errors. */
export async function tick(env: TestEnv, now: Date, deps: Deps = env.deps) {
  const report = await runTick(withClock(deps, now));
  expect(report.errors, JSON.stringify(report.errors)).toEqual([]);
  return report;
}

/** Drains the jobs queue: the job ids of every message in it. */
export async function receiveAll(deps: Deps): Promise<string[]> {
  const ids: string[] = [];
  for (;;) {
    const res = await deps.sqs.send(new ReceiveMessageCommand({ QueueUrl: deps.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    const msgs = res.Messages ?? [];
    if (!msgs.length) return ids;
    ids.push(...msgs.map((m) => (JSON.parse(m.Body ?? "{}") as { job_id: string }).job_id));
    await deps.sqs.send(
      new DeleteMessageBatchCommand({ QueueUrl: deps.queueUrl, Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
    );
  }
}

/** The CloudWatch EMF lines `fn` writes to stdout (Powertools Metrics), parsed; other output passes through. */
export async function emfLines(fn: () => Promise<void>): Promise<any[]> {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: any[]) => {
    const text = chunk.toString();
    if (text.includes('"_aws"')) lines.push(text);
    else write(chunk, ...rest);
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
  }
  return lines
    .flatMap((l) => l.split("\n"))
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}
