import { describe, expect, it } from "vitest";
import { writeFailureOf } from "../../core/db/store.ts";
import { AppError } from "../../core/errors.ts";

const cancelled = (...codes: string[]) => ({ name: "TransactionCanceledException", CancellationReasons: codes.map((Code) => ({ Code })) });

describe("writeFailureOf: what a refused DynamoDB write means", () => {
  it.each([
    ["plain failed condition", { name: "ConditionalCheckFailedException" }, "condition"],
    ["transaction: a failed condition", cancelled("None", "ConditionalCheckFailed"), "condition"],
    ["transaction: condition wins over conflict", cancelled("TransactionConflict", "ConditionalCheckFailed"), "condition"],
    ["transaction: conflict", cancelled("None", "TransactionConflict"), "contention"],
    ["plain write inside another transaction", { name: "TransactionConflictException" }, "contention"],
    ["idempotent transaction still in progress", { name: "TransactionInProgressException" }, "contention"],
    ["transaction: throttled", cancelled("None", "ThrottlingError"), "unavailable"],
    ["transaction: over provisioned throughput", cancelled("ProvisionedThroughputExceeded"), "unavailable"],
    ["transaction: validation error (a bug)", cancelled("ValidationError"), undefined],
    ["transaction: item collection too big (a bug)", cancelled("ItemCollectionSizeLimitExceeded"), undefined],
    ["transaction without reasons", cancelled(), undefined],
    ["throttling", { name: "ThrottlingException" }, "unavailable"],
    ["timeout", { name: "TimeoutError" }, "unavailable"],
    ["connection refused", { code: "ECONNREFUSED" }, "unavailable"],
    ["a 500 from the service", { name: "InternalServerError", $metadata: { httpStatusCode: 500 } }, "unavailable"],
    ["validation (a bug)", { name: "ValidationException", $metadata: { httpStatusCode: 400 } }, undefined],
    ["domain conflict", new AppError("conflict", "x"), "condition"],
    ["domain contention", new AppError("conflict", "x", { contention: true }), "contention"],
    ["nothing", undefined, undefined],
  ] as const)("%s", (_what, err, expected) => {
    expect(writeFailureOf(err)).toBe(expected);
  });
});
