import { describe, expect, it } from "vitest";
import { checkStartKey, decodeCursor, encodeCursor } from "../../core/db/cursor.ts";

describe("cursor codec", () => {
  const table = { KeyConditionExpression: "pk = :p AND begins_with(sk, :b)", ExpressionAttributeValues: { ":p": "PRJ#a", ":b": "BKP#" } };
  const gsi = { IndexName: "gsi1", KeyConditionExpression: "gsi1pk = :p", ExpressionAttributeValues: { ":p": "PRJ#a#JOB" } };
  const backupKey = { pk: "PRJ#a", sk: "BKP#bkp_1" };
  const jobKey = { pk: "JOB#job_1", sk: "JOB", gsi1pk: "PRJ#a#JOB", gsi1sk: "job_1" };

  it("round-trips", () => {
    expect(decodeCursor(encodeCursor(backupKey))).toEqual(backupKey);
    expect(encodeCursor(undefined)).toBeUndefined();
    expect(decodeCursor(undefined)).toBeUndefined();
  });

  it.each([
    ["a genuine table cursor", table, backupKey, true],
    ["a genuine index cursor", gsi, jobKey, true],
    ["another partition", table, { ...backupKey, pk: "PRJ#b" }, false],
    ["another sort prefix", table, { ...backupKey, sk: "SCH" }, false],
    ["an index cursor on the table", table, jobKey, false],
    ["a table cursor on an index", gsi, { pk: "PRJ#a#JOB", sk: "x" }, false],
    ["a missing attribute", gsi, { pk: "JOB#job_1", sk: "JOB", gsi1pk: "PRJ#a#JOB" }, false],
    ["an extra attribute", table, { ...backupKey, x: "y" }, false],
    ["another index's partition", gsi, { ...jobKey, gsi1pk: "PRJ#b#JOB" }, false],
    ["a number", table, { pk: "PRJ#a", sk: 3 }, false],
  ] as const)("%s", (_what, input, key, valid) => {
    const check = () => checkStartKey(input, key as Record<string, unknown>);
    if (valid) expect(check).not.toThrow();
    else expect(check).toThrow(/cursor is not valid/);
  });

  it.each([
    ["{}", "e30"],
    ["not base64", "***"],
    ["a number", encodeCursor({ a: 1 } as never)!.replace(/./, "x")],
    ["too long", "A".repeat(5000)],
    ["empty object", Buffer.from("{}").toString("base64url")],
    ["an array", Buffer.from(JSON.stringify(["pk", "sk"])).toString("base64url")],
    ["null", Buffer.from(JSON.stringify(null)).toString("base64url")],
    ["a bare string", Buffer.from(JSON.stringify("pk")).toString("base64url")],
    ["an empty value", Buffer.from(JSON.stringify({ pk: "" })).toString("base64url")],
    ["a value over 1024 characters", Buffer.from(JSON.stringify({ pk: "x".repeat(1025) })).toString("base64url")],
    ["a nested object", Buffer.from(JSON.stringify({ pk: { S: "x" } })).toString("base64url")],
    ["padding (not base64url)", "e30="],
  ])("decodes %s as a 400", (_what, cursor) => {
    expect(() => decodeCursor(cursor)).toThrow(expect.objectContaining({ code: "bad_request" }));
  });
});
