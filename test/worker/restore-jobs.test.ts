import { createTestEnv, type TestEnv } from "../support/env.ts";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkerFailure } from "../../core/pg/classify.ts";
import { dumpToS3, type DumpResult } from "../../core/pg/dump.ts";
import { restoreInto } from "../../core/pg/verify.ts";
import { objectBytes } from "./support.ts";

let env: TestEnv;
let dump: DumpResult;
const key = "tests/restore-jobs/source.dump";
const signal = new AbortController().signal;

beforeAll(async () => {
  env = await createTestEnv();
  const source = await env.createDatabase({ prefix: "rjobs" });
  await env.query(
    source,
    `CREATE TABLE a (id int PRIMARY KEY, t text); INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
     CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a(id)); INSERT INTO b SELECT g, 1 + g % 20000 FROM generate_series(1, 30000) g;
     CREATE INDEX b_a ON b (a_id);`,
  );
  const conn = connOf(env);
  dump = await dumpToS3({
    s3: env.deps.s3,
    bucket: env.deps.bucket,
    key,
    conn,
    database: source,
    pgBinDirs: env.deps.pgBinDirs,
    partSizeBytes: 5 * 1024 * 1024,
    uploadQueueSize: 2,
    lockWaitTimeoutMs: 10_000,
    signal,
  });
});
afterAll(async () => env?.cleanup());

function connOf(e: TestEnv) {
  const u = new URL(e.infra.postgresUrl);
  return {
    host: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    adminDatabase: "postgres",
    sslmode: "disable",
    insecureTls: true,
  };
}

describe("a restore with jobs: 2 (downloaded to local disk, then pg_restore --jobs)", () => {
  it("restores everything, with the archive's row counts checked", async () => {
    // prepare
    const target = await env.createDatabase({ prefix: "rjobs_t" });

    // act
    await restoreInto({
      s3: env.deps.s3,
      bucket: env.deps.bucket,
      key,
      expectedSha256: dump.sha256,
      expectedRowCounts: dump.rowCounts,
      conn: connOf(env),
      database: target,
      tools: dump.tools,
      signal,
      jobs: 2,
    });

    // assess
    expect(dump.rowCounts).toEqual({ "public.a": 20000, "public.b": 30000 });
    const [row] = await env.query<{ a: string; b: string; idx: string }>(
      target,
      "SELECT (SELECT count(*) FROM a) AS a, (SELECT count(*) FROM b) AS b, (SELECT count(*) FROM pg_indexes WHERE tablename IN ('a', 'b')) AS idx",
    );
    expect(row).toEqual({ a: "20000", b: "30000", idx: "3" });
  });

  it("refuses a corrupted object before restoring anything", async () => {
    // prepare: the stored object with bytes flipped in the middle
    const bytes = await objectBytes(env.deps, key);
    for (let i = Math.floor(bytes.length / 2); i < Math.floor(bytes.length / 2) + 32; i++) bytes[i] = bytes[i]! ^ 0xff;
    const bad = "tests/restore-jobs/corrupted.dump";
    await env.deps.s3.send(new PutObjectCommand({ Bucket: env.deps.bucket, Key: bad, Body: bytes }));
    const target = await env.createDatabase({ prefix: "rjobs_c" });

    // act
    const err = await restoreInto({
      s3: env.deps.s3,
      bucket: env.deps.bucket,
      key: bad,
      expectedSha256: dump.sha256,
      expectedRowCounts: dump.rowCounts,
      conn: connOf(env),
      database: target,
      tools: dump.tools,
      signal,
      jobs: 2,
    }).catch((e: unknown) => e);

    // assess
    expect(err).toBeInstanceOf(WorkerFailure);
    expect((err as Error).message).toMatch(/corrupted/);
    const tables = await env.query(target, "SELECT 1 FROM pg_tables WHERE schemaname = 'public'");
    expect(tables).toEqual([]);
  });
});
