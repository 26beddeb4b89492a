import type { Context, SQSRecord } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { z } from "../../core/zod.ts";
import { sqsBatchHandler } from "../../core/aws/sqs-batch.ts";

/** The Lambda event's record shape, as SQS delivers it. */
function record(id: string, body: string): SQSRecord {
  return {
    messageId: id,
    receiptHandle: `handle-${id}`,
    body,
    attributes: { ApproximateReceiveCount: "1", SentTimestamp: "0", SenderId: "x", ApproximateFirstReceiveTimestamp: "0" },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:q",
    awsRegion: "us-east-1",
  };
}
const context = {} as Context;

describe("sqsBatchHandler (the jobs and deliveries queues' batch handling)", () => {
  it("hands each valid message to the handler and reports only the malformed and failing ones back", async () => {
    const seen: string[] = [];
    const handler = sqsBatchHandler(z.object({ n: z.number() }), "number message", async (msg, r) => {
      if (msg.n < 0) throw new Error("negative");
      seen.push(`${r.messageId}:${msg.n}`);
    });
    const result = await handler(
      { Records: [record("a", '{"n":1}'), record("b", "{not json"), record("c", '{"n":"x"}'), record("d", '{"n":-1}'), record("e", '{"n":2}')] },
      context,
    );
    expect(seen.sort()).toEqual(["a:1", "e:2"]);
    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(["b", "c", "d"]);
  });

  it("a batch that failed whole is reported, not thrown (the invocation itself succeeded)", async () => {
    const handler = sqsBatchHandler(z.object({ n: z.number() }), "number message", async () => undefined);
    const result = await handler({ Records: [record("x", "nope"), record("y", "[]")] }, context);
    expect(result.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(["x", "y"]);
  });

  it("keeps concurrent batches' failures apart (one processor per batch)", async () => {
    const handler = sqsBatchHandler(z.object({ n: z.number() }), "number message", async (msg) => {
      await new Promise((r) => setTimeout(r, msg.n));
      if (msg.n === 5) throw new Error("five");
    });
    const [one, two] = await Promise.all([
      handler({ Records: [record("1a", '{"n":5}'), record("1b", '{"n":1}')] }, context),
      handler({ Records: [record("2a", '{"n":2}'), record("2b", '{"n":3}')] }, context),
    ]);
    expect(one.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(["1a"]);
    expect(two.batchItemFailures).toEqual([]);
  });
});
