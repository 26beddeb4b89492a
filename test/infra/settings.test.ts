import { describe, expect, it } from "vitest";
import { tableDefinition } from "../../core/db/table.ts";
import {
  architecture,
  bucketEncryption,
  bucketLifecycleRules,
  dispatchSchedule,
  functions,
  pgBinDir,
  queue,
  runtime,
  tableArgs,
  toSeconds,
  visibilityTimeoutFactor,
  workerSubscription,
} from "../../infra/settings.ts";

describe("infra settings: the table", () => {
  it("has the keys, indexes and TTL of core/db/table.ts", () => {
    // prepare
    const expectedIndexes = Object.fromEntries(
      Object.entries(tableDefinition.globalIndexes).map(([name, i]) => [name, { hashKey: i.partitionKey, rangeKey: i.sortKey, projection: "all" }]),
    );
    // assess
    expect(tableArgs.primaryIndex).toEqual({
      hashKey: tableDefinition.partitionKey,
      rangeKey: tableDefinition.sortKey,
    });
    expect(tableArgs.globalIndexes).toEqual(expectedIndexes);
    expect(tableArgs.ttl).toBe(tableDefinition.ttlAttribute);
  });

  it("declares every key attribute as a string and nothing else", () => {
    const keys = [
      tableDefinition.partitionKey,
      tableDefinition.sortKey,
      ...Object.values(tableDefinition.globalIndexes).flatMap((i) => [i.partitionKey, i.sortKey]),
    ];
    expect(Object.keys(tableArgs.fields).sort()).toEqual([...keys].sort());
    expect(new Set(Object.values(tableArgs.fields))).toEqual(new Set(["string"]));
    // The TTL attribute is a number written by the code, never a key.
    expect(tableArgs.fields).not.toHaveProperty(tableDefinition.ttlAttribute);
  });
});

describe("infra settings: queue and worker", () => {
  it("parses SST durations", () => {
    expect(toSeconds("29 seconds")).toBe(29);
    expect(toSeconds("15 minutes")).toBe(900);
    expect(toSeconds("1 hour")).toBe(3600);
    expect(toSeconds("1 day")).toBe(86400);
  });

  it("keeps the visibility timeout at least six times the worker timeout", () => {
    const worker = toSeconds(functions.worker.timeout);
    const visibility = toSeconds(queue.visibilityTimeout);
    expect(visibilityTimeoutFactor).toBeGreaterThanOrEqual(6);
    expect(visibility, `${queue.visibilityTimeout} vs ${functions.worker.timeout}`).toBeGreaterThanOrEqual(6 * worker);
    // SQS's ceiling for a visibility timeout is 12 hours.
    expect(visibility).toBeLessThanOrEqual(12 * 3600);
  });

  it("stays within Lambda's limits", () => {
    for (const [name, fn] of Object.entries(functions)) {
      expect(toSeconds(fn.timeout), name).toBeLessThanOrEqual(900);
      const mb = Number(fn.memory.split(" ")[0]) * (fn.memory.endsWith("GB") ? 1024 : 1);
      expect(mb, name).toBeGreaterThanOrEqual(128);
      expect(mb, name).toBeLessThanOrEqual(10240);
    }
    // API Gateway stops waiting after 30 s: a longer API timeout would bill for lost answers.
    expect(toSeconds(functions.api.timeout)).toBeLessThan(30);
  });

  it("runs the worker on nodejs24.x arm64 with the pg layer's directory", () => {
    expect(runtime).toBe("nodejs24.x");
    expect(architecture).toBe("arm64");
    expect(functions.worker.environment.CAPYDB_PG_BIN_DIRS).toBe(pgBinDir);
    expect(pgBinDir).toBe("/opt/pgsql");
    expect(toSeconds(functions.worker.timeout)).toBe(900);
  });

  it("reports SQS failures per record", () => {
    expect(workerSubscription.batch.partialResponses).toBe(true);
  });

  it("ticks the dispatcher every minute without scheduler retries", () => {
    expect(dispatchSchedule).toEqual({ schedule: "rate(1 minute)", retries: 0 });
  });
});

describe("infra settings: the bucket", () => {
  it("aborts incomplete multipart uploads after one day, bucket-wide", () => {
    const abort = bucketLifecycleRules.filter((r) => r.abortIncompleteMultipartUpload);
    expect(abort).toHaveLength(1);
    expect(abort[0]).toMatchObject({
      status: "Enabled",
      filter: { prefix: "" },
      abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
    });
  });

  it("encrypts at rest", () => {
    expect(bucketEncryption.rules[0]?.applyServerSideEncryptionByDefault.sseAlgorithm).toBe("AES256");
  });
});
