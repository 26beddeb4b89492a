import { createTestEnv, type TestEnv } from "../support/env.ts";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getLock } from "../../core/jobs/locks.ts";
import { classify, WorkerFailure } from "../../core/pg/classify.ts";
import { pickPgTools } from "../../core/pg/pgtools.ts";
import { runJob } from "../../core/worker/run.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { backupOf, CapturingLogger, fastOptions, listKeys, objectExists, postBackup, runQueueUntilSettled, smallDatabase } from "./support.ts";

const logLines: string[] = [];
let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv({ log: new CapturingLogger(logLines) });
});
afterAll(async () => env?.cleanup());

describe("failures are classified and reported honestly", () => {
  it("wrong password: failed, permanent, one attempt, and the password is in no job field and no log line", async () => {
    // prepare
    const password = "Wr0ng-Secret-9f3a1c";
    const url = new URL(env.infra.postgresUrl);
    url.password = password;
    const tenant = await env.seedTenant({ database: await smallDatabase(env), clusterUrl: url.toString() });
    const job = await postBackup(env, tenant);

    // act
    const [settled] = await runQueueUntilSettled(env.deps, [job.id]);

    // assess
    expect(settled, JSON.stringify(settled)).toMatchObject({ state: "failed", retry_classification: "permanent", attempts: 1 });
    expect(settled?.error).toMatch(/authentication failed/);
    expect(settled?.last_stderr).toMatch(/password authentication failed/);
    expect(JSON.stringify(settled)).not.toContain(password);
    const backup = await backupOf(env.deps, settled!);
    expect(backup).toMatchObject({ state: "failed", verification_state: "failed" });
    expect(JSON.stringify(backup)).not.toContain(password);
    expect(
      logLines.some((l) => l.includes(job.id)),
      "the run was logged",
    ).toBe(true);
    for (const line of logLines) expect(line).not.toContain(password);
    expect(await getLock(env.deps, settled!.locked_resource!)).toBeUndefined();
  });

  it("a dropped database: failed, permanent, at the first attempt", async () => {
    // prepare
    const db = await smallDatabase(env);
    const tenant = await env.seedTenant({ database: db });
    await env.query("postgres", `DROP DATABASE "${db}" WITH (FORCE)`);
    const job = await postBackup(env, tenant);

    // act
    const outcome = await runJob(env.deps, job.id, undefined, fastOptions);

    // assess
    expect(outcome).toMatchObject({ status: "failed", ack: true });
    const settled = await getJobItem(env.deps, job.id);
    expect(settled, JSON.stringify(settled)).toMatchObject({ state: "failed", retry_classification: "permanent", attempts: 1 });
    expect(settled?.error).toBe(`The database "${db}" does not exist on its server.`);
    expect(await listKeys(env.deps, `projects/${tenant.projectId}/`)).toEqual([]);
  });

  it("a corrupted object: verification fails, the backup is failed and its artifact deleted", async () => {
    // prepare: a hook flips bytes in the middle of the stored object before the restore check
    const tenant = await env.seedTenant({ database: await smallDatabase(env) });
    const job = await postBackup(env, tenant);
    const corrupt = async ({ s3, bucket, key }: { s3: typeof env.deps.s3; bucket: string; key: string }) => {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const bytes = Buffer.from(await got.Body!.transformToByteArray());
      for (let i = Math.floor(bytes.length / 2); i < Math.floor(bytes.length / 2) + 64 && i < bytes.length; i++) bytes[i] = bytes[i]! ^ 0xff;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    };

    // act
    const outcome = await runJob(env.deps, job.id, undefined, { ...fastOptions, hooks: { beforeVerify: corrupt } });

    // assess
    expect(outcome.status).toBe("failed");
    const settled = await getJobItem(env.deps, job.id);
    expect(settled, JSON.stringify(settled)).toMatchObject({ state: "failed", retry_classification: "permanent", attempts: 1 });
    const backup = await backupOf(env.deps, settled!);
    expect(backup).toMatchObject({ state: "failed", verification_state: "failed", size_bytes: 0 });
    expect(backup.verification_error).toMatch(/corrupted/);
    expect(await objectExists(env.deps, backup.backup_key)).toBe(false);
    const scratch = await env.query("postgres", "SELECT 1 FROM pg_database WHERE datname = $1", [`capydb_verify_${backup.id.slice(4)}`]);
    expect(scratch).toEqual([]);
  });
});

describe("pg_dump selection", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "capydb-pgbin-"));
    // A fake installation that only answers --version.
    for (const major of ["17"]) {
      mkdirSync(join(dir, major, "bin"), { recursive: true });
      for (const tool of ["pg_dump", "pg_restore"]) {
        const p = join(dir, major, "bin", tool);
        writeFileSync(p, `#!/bin/sh\necho "${tool} (PostgreSQL) ${major}.2"\n`);
        chmodSync(p, 0o755);
      }
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("picks the lowest major at least the server's, from the configured directory or the system", async () => {
    expect((await pickPgTools({ major: 16, text: "16.4" }, [dir])).pgDump).toBe(join(dir, "17", "bin", "pg_dump"));
    expect((await pickPgTools({ major: 15, text: "15.8" }, [dir])).major).toBe(15);
  });

  it("fails permanently, naming both versions, when no pg_dump is new enough", async () => {
    const err = await pickPgTools({ major: 99, text: "99.1" }, [dir]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerFailure);
    expect((err as WorkerFailure).classification).toBe("permanent");
    expect((err as Error).message).toMatch(/PostgreSQL 99\.1.*17\.2/);
  });
});

describe("classification", () => {
  it.each([
    [{ code: "28P01", message: 'password authentication failed for user "x"' }, "permanent"],
    [{ code: "3D000", message: 'database "gone" does not exist' }, "permanent"],
    [{ code: "42501", message: "permission denied for table t" }, "permanent"],
    [{ code: "53300", message: "sorry, too many clients already" }, "transient"],
    [{ code: "57P03", message: "the database system is starting up" }, "transient"],
    [Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }), "transient"],
    [Object.assign(new Error("SlowDown"), { name: "SlowDown", $metadata: { httpStatusCode: 503 } }), "transient"],
    [Object.assign(new Error("Access Denied"), { name: "AccessDenied", $metadata: { httpStatusCode: 403 } }), "permanent"],
  ])("%o is %s", (err, expected) => {
    expect(classify(err).classification).toBe(expected);
  });
});
