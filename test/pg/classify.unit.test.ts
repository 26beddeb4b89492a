import { describe, expect, it } from "vitest";
import { AppError } from "../../core/errors.ts";
import { classify, classifyText, firstErrorLine, messages, WorkerFailure } from "../../core/pg/classify.ts";

/** The retry classification rules: what a failure means to the customer, and whether a retry can help. */
describe("classifyText: tool stderr", () => {
  it.each([
    ['pg_dump: error: connection to server failed: FATAL:  password authentication failed for user "capy"', "permanent", messages.auth],
    ['FATAL:  no pg_hba.conf entry for host "10.0.0.1"', "permanent", messages.auth],
    ['FATAL:  role "ghost" does not exist', "permanent", messages.auth],
    ['FATAL:  database "shop" does not exist', "permanent", messages.missingDatabase("shop")],
    ["ERROR:  permission denied for table orders", "permanent", messages.permission],
    ["ERROR:  must be owner of table orders", "permanent", messages.permission],
    ["pg_dump: error: aborting because of server version mismatch", "permanent", messages.version],
    ["pg_restore: error: unsupported version (1.16) in file header", "permanent", messages.version],
    ["FATAL:  sorry, too many clients already", "transient", messages.tooManyConnections],
    ["FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute", "transient", messages.tooManyConnections],
    ["FATAL:  the database system is starting up", "transient", messages.restarting],
    ["FATAL:  terminating connection due to administrator command", "transient", messages.restarting],
    ['pg_dump: error: could not obtain lock on relation "orders"', "transient", messages.locked],
    ["ERROR:  canceling statement due to lock timeout", "transient", messages.locked],
    ["pg_dump: error: connection to server failed: timeout expired", "transient", messages.timeout],
    ['connection to server at "db" (10.0.0.1), port 5432 failed: Connection refused', "transient", messages.unreachable],
    ["pg_dump: error: server closed the connection unexpectedly", "transient", messages.unreachable],
    ['could not translate host name "db.internal" to address', "transient", messages.unreachable],
    ["SSL SYSCALL error: EOF detected", "transient", messages.unreachable],
  ] as const)("%s", (text, classification, message) => {
    expect(classifyText(text)).toEqual({ classification, message });
  });

  it("authentication wins over a mention of the connection (rules are ordered, permanent first)", () => {
    expect(classifyText("could not connect: password authentication failed for user x")?.classification).toBe("permanent");
  });

  it("says nothing about text it does not recognise", () => {
    expect(classifyText("pg_dump: warning: something odd")).toBeUndefined();
  });
});

describe("classify: anything a run can throw", () => {
  const pg = (code: string, message = "x") => Object.assign(new Error(message), { code });
  const s3 = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  it.each([
    ["SQLSTATE 28P01 (bad password)", pg("28P01"), "permanent", messages.auth],
    ["SQLSTATE 3D000 names the database", pg("3D000", 'database "gone" does not exist'), "permanent", messages.missingDatabase("gone")],
    ["SQLSTATE 42501", pg("42501"), "permanent", messages.permission],
    ["SQLSTATE 53300", pg("53300"), "transient", messages.tooManyConnections],
    ["SQLSTATE class 08 (connection)", pg("08006"), "transient", messages.unreachable],
    ["SQLSTATE class 57P (shutdown)", pg("57P01"), "transient", messages.restarting],
    ["SQLSTATE 55P03 (lock not available)", pg("55P03"), "transient", messages.locked],
    ["SQLSTATE 57014 (statement timeout)", pg("57014"), "transient", messages.locked],
    ["SQLSTATE 40001 (serialization)", pg("40001"), "transient", messages.contention],
    ["SQLSTATE 40P01 (deadlock)", pg("40P01"), "transient", messages.contention],
    ["SQLSTATE class 53 (disk full)", pg("53100"), "transient", messages.resources],
    ["an unknown SQLSTATE falls back to the message", pg("XX000", "server closed the connection unexpectedly"), "transient", messages.unreachable],
    ["ECONNREFUSED", pg("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432"), "transient", messages.unreachable],
    ["S3 throttling (503)", s3("SlowDown", 503), "transient", "Object storage was unavailable or throttled the transfer."],
    ["S3 500: unavailable", s3("InternalError", 500), "transient", "Object storage was unavailable or throttled the transfer."],
    ["S3 redirect (wrong region)", s3("PermanentRedirect", 301), "transient", "Object storage failed the transfer."],
    ["S3 refusal (403)", s3("AccessDenied", 403), "permanent", "Object storage refused the backup (AccessDenied)."],
    ["S3 missing bucket (404)", s3("NoSuchBucket", 404), "permanent", "Object storage refused the backup (NoSuchBucket)."],
    ["the service's own storage unavailable", new AppError("unavailable", "dynamo down"), "transient", "The service's own storage was briefly unavailable."],
    ["anything else: transient (retries are bounded)", new Error("something nobody foresaw"), "transient", "The backup failed unexpectedly."],
    ["a thrown string", "boom", "transient", "The backup failed unexpectedly."],
  ] as const)("%s", (_what, err, classification, message) => {
    const f = classify(err);
    expect(f).toBeInstanceOf(WorkerFailure);
    expect([f.classification, f.message]).toEqual([classification, message]);
  });

  it("a storage-origin error without an HTTP status is transient", () => {
    expect(classify(new Error("socket hang up"), "storage").classification).toBe("transient");
  });

  it("an explicit verdict stands", () => {
    const verdict = new WorkerFailure("permanent", "The dump is empty.");
    expect(classify(verdict)).toBe(verdict);
  });
});

describe("firstErrorLine", () => {
  it.each([
    ["pg_dump: warning: x\npg_dump: error: query failed: boom\nmore", "query failed: boom"],
    ["pg_restore: error: could not execute query", "could not execute query"],
    ["\n\nplain text\n", "plain text"],
    ["", ""],
    [`pg_dump: error: ${"x".repeat(400)}`, "x".repeat(300)],
  ])("%j -> %j", (text, line) => {
    expect(firstErrorLine(text)).toBe(line);
  });
});
