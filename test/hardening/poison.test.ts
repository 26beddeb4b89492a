import { createTestEnv, type TestEnv } from "../support/env.ts";
import { GetQueueAttributesCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "../../core/deps.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import { startWorkerLoop } from "../../local/loops.ts";
import { backupOf, CapturingLogger, fastOptions, postBackup, smallDatabase, waitFor } from "../worker/support.ts";
import { adminCli, canaryClusterUrl, canarySightings, onOwnQueues } from "./support.ts";

const logLines: string[] = [];
let env: TestEnv;
let deps: Deps;
beforeAll(async () => {
  // A queue that gives up quickly: two receives, then the dead-letter queue; one-second visibility.
  env = await onOwnQueues(await createTestEnv({ log: new CapturingLogger(logLines) }), { maxReceiveCount: 2, visibilityTimeoutSeconds: 1 });
  deps = env.deps;
});
afterAll(async () => env?.cleanup());

const depth = async (url: string) => {
  const res = await deps.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
  );
  return Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
};

describe("poison messages", () => {
  it("land in the dead-letter queue after the redrive count without failing their batch; dlq list shows them, dlq redrive replays", async () => {
    // prepare: three poison messages and one real job, all queued before any worker runs
    const tenant = await env.seedTenant({ database: await smallDatabase(env, 50), clusterUrl: await canaryClusterUrl(env) });
    const unknownJob = "job_01jzzzzzzzzzzzzzzzzzzzzzzz";
    const poison = ["{not json", JSON.stringify({ job_id: "nope" }), JSON.stringify({ job_id: unknownJob })];
    for (const body of poison) await deps.sqs.send(new SendMessageCommand({ QueueUrl: deps.queueUrl, MessageBody: body }));
    const job = await postBackup(env, tenant);

    const batches: { ids: string[]; bodies: string[]; failed: string[] }[] = [];
    const handler = createWorkerHandler(deps, fastOptions);
    const recording = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
      const result = await handler(event, context);
      batches.push({
        ids: event.Records.map((r) => r.messageId),
        bodies: event.Records.map((r) => r.body),
        failed: result.batchItemFailures.map((f) => f.itemIdentifier),
      });
      return result;
    };
    const loop = startWorkerLoop(deps, recording, { concurrency: 1, batchSize: 10, waitSeconds: 1 });
    try {
      // act
      const done = await waitFor("the real job to complete", async () => {
        const j = await getJobItem(deps, job.id);
        return j?.state === "completed" ? j : undefined;
      });
      await waitFor("the poison to reach the dead-letter queue", async () => (await depth(deps.dlqUrl!)) === 3 && (await depth(deps.queueUrl)) === 0, 30_000);

      // assess: the first batch held all four; only the poison was reported failed
      const first = batches[0]!;
      expect([...first.bodies].sort(), JSON.stringify(batches)).toEqual([...poison, JSON.stringify({ job_id: job.id })].sort());
      expect(first.failed).toHaveLength(3);
      expect(first.failed.map((id) => first.bodies[first.ids.indexOf(id)]).sort()).toEqual([...poison].sort());
      expect(done, JSON.stringify(done)).toMatchObject({ attempts: 1, error: null });
      expect(await backupOf(deps, done)).toMatchObject({ state: "completed", verification_state: "verified" });
      expect(logLines.some((l) => l.includes(unknownJob) && l.includes("does not exist"))).toBe(true);

      // capydb-admin dlq list shows the three, and leaves them there
      const listed = adminCli(env, ["dlq", "list"]) as { count: number; messages: { body: string; receive_count: number }[] };
      expect(listed.count).toBe(3);
      expect(listed.messages.map((m) => m.body).sort()).toEqual([...poison].sort());
      expect(await depth(deps.dlqUrl!)).toBe(3);

      // a real job whose message was dead-lettered (here: sent straight to the DLQ, as if its
      // worker had crashed on every delivery) is replayed by dlq redrive and completes
      const stranded = await postBackup({ ...env, app: (o) => env.app({ deps: { ...deps, queueUrl: deps.dlqUrl! }, ...o }) }, tenant);
      expect(adminCli(env, ["dlq", "list"])).toMatchObject({ count: 4 });
      expect(adminCli(env, ["dlq", "redrive"])).toEqual({ moved: 4 });
      const replayed = await waitFor("the replayed job to complete", async () => {
        const j = await getJobItem(deps, stranded.id);
        return j?.state === "completed" ? j : undefined;
      });
      expect(replayed.attempts).toBe(1);
      // the poison, replayed too, goes back to the dead-letter queue; nothing else does
      await waitFor(
        "the poison to return to the dead-letter queue",
        async () => (await depth(deps.dlqUrl!)) === 3 && (await depth(deps.queueUrl)) === 0,
        30_000,
      );
    } finally {
      await loop.stop();
    }
    expect(canarySightings("log", logLines)).toEqual([]);
  });
});
