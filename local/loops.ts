import { DeleteMessageBatchCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import type { Deps } from "../core/deps.ts";

type WorkerHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

const fakeContext = (name: string): Context =>
  ({
    functionName: name,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${name}`,
    memoryLimitInMB: "1024",
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/local/${name}`,
    logStreamName: "local",
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => 900_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  }) as Context;

/**
 * What Lambda's SQS event source does, locally: long-poll the queue, hand each batch to the same
 * handler the worker function uses, delete the messages it did not report as failed. Failed ones
 * become visible again after their visibility timeout and, past the redrive count, go to the DLQ.
 */
export function startWorkerLoop(
  deps: Deps,
  handler: WorkerHandler,
  opts: { concurrency?: number; batchSize?: number; waitSeconds?: number; queueUrl?: string; name?: string } = {},
) {
  const queueUrl = opts.queueUrl ?? deps.queueUrl;
  const name = opts.name ?? "worker";
  let running = true;
  const inFlight = new Set<Promise<void>>();
  const poll = async () => {
    while (running) {
      try {
        const res = await deps.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: opts.batchSize ?? 5,
            WaitTimeSeconds: opts.waitSeconds ?? 1,
            MessageSystemAttributeNames: ["ApproximateReceiveCount", "SentTimestamp"],
          }),
        );
        const messages = res.Messages ?? [];
        if (!messages.length) continue;
        const event: SQSEvent = {
          Records: messages.map((m) => ({
            messageId: m.MessageId!,
            receiptHandle: m.ReceiptHandle!,
            body: m.Body ?? "",
            attributes: {
              ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? "1",
              SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
              SenderId: "local",
              ApproximateFirstReceiveTimestamp: String(Date.now()),
            },
            messageAttributes: {},
            md5OfBody: m.MD5OfBody ?? "",
            eventSource: "aws:sqs",
            eventSourceARN: `arn:aws:sqs:local:000000000000:${name}`,
            awsRegion: "local",
          })),
        };
        const result = await handler(event, fakeContext(name));
        const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
        const done = messages.filter((m) => !failed.has(m.MessageId!));
        if (done.length) {
          await deps.sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
            }),
          );
        }
      } catch (err) {
        if (!running) break;
        deps.log.warn(`${name} loop: receive failed, retrying`, { error: String(err) });
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  };
  for (let i = 0; i < (opts.concurrency ?? 2); i++) {
    const p = poll();
    inFlight.add(p);
  }
  return {
    async stop() {
      running = false;
      await Promise.allSettled(inFlight);
    },
  };
}

/** What the EventBridge schedule does, locally: call the dispatcher every `intervalMs`. */
export function startTicker(deps: Deps, tick: () => Promise<unknown>, intervalMs = 60_000, name = "dispatcher") {
  let current: Promise<unknown> = Promise.resolve();
  let busy = false;
  const run = () => {
    if (busy) return; // a slow tick is not stacked on
    busy = true;
    current = tick()
      .catch((err: unknown) => deps.log.error(`${name} tick failed`, { error: String(err) }))
      .finally(() => (busy = false));
  };
  const timer = setInterval(run, intervalMs);
  run();
  return {
    async stop() {
      clearInterval(timer);
      await current;
    },
  };
}
