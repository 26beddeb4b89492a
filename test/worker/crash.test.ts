import { createTestEnv, type TestEnv } from "../support/env.ts";
import { DeleteBucketCommand, DeleteObjectCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackupForWork } from "../../core/backups/backups.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { getLock } from "../../core/jobs/locks.ts";
import { pickPgTools } from "../../core/pg/pgtools.ts";
import { runJob } from "../../core/worker/run.ts";
import { fastOptions, FILLER_OVER_ONE_PART, objectBytes, postBackup, sha256, waitFor } from "./support.ts";

let env: TestEnv;
let dir: string;
let child: ChildProcess | undefined;
beforeAll(async () => {
  env = await createTestEnv();
  dir = mkdtempSync(join(tmpdir(), "capydb-crash-"));
});
afterAll(async () => {
  try {
    if (child?.pid) process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
  rmSync(dir, { recursive: true, force: true });
  await env?.cleanup();
});

/**
 * A PostgreSQL installation whose pg_dump writes the whole real dump and then hangs, as a
 * worker stuck mid-dump would: the upload has parts in flight and never finishes.
 */
async function stallingInstallation(): Promise<string> {
  const real = await pickPgTools({ major: 15, text: "15" }, []);
  const bin = join(dir, "pg", String(real.major), "bin");
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, "pg_dump"),
    `#!/bin/sh\ncase "$1" in --version|-V) exec "${real.pgDump}" "$@";; esac\n"${real.pgDump}" "$@" --compress=0\nexec sleep 300\n`,
  );
  chmodSync(join(bin, "pg_dump"), 0o755);
  symlinkSync(real.pgRestore, join(bin, "pg_restore"));
  return join(dir, "pg");
}

describe("a worker killed in the middle of a dump", () => {
  it("leaves a lease that lapses; another worker completes the job, no lock or partial upload remains", async () => {
    // prepare: a database whose dump is larger than one upload part (8 MiB)
    const db = await env.createDatabase({ prefix: "crash" });
    await env.query(db, FILLER_OVER_ONE_PART);
    const tenant = await env.seedTenant({ database: db });
    const job = (await getJobItem(env.deps, (await postBackup(env, tenant)).id))!;
    const pgDir = await stallingInstallation();

    // act 1: a separate worker process takes the job and stalls mid-dump
    child = spawn(join(process.cwd(), "node_modules", ".bin", "tsx"), [join("test", "worker", "fixtures", "crash-worker.ts")], {
      detached: true, // its own process group: tsx, node, pg_dump and the wrapper die together
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: `${join(process.cwd(), "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
        ...env.serviceEnv(),
        CAPYDB_PG_BIN_DIRS: pgDir,
        CAPYDB_WORKER_ID: "crash-worker",
        LOG_LEVEL: "ERROR",
        JOB_ID: job.id,
        LEASE_MS: "4000",
        HEARTBEAT_MS: "1000",
      },
    });
    let output = "";
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    const inFlight = await waitFor(
      "the dead-to-be worker's upload to have a part in flight",
      async () => {
        const b = await getBackupForWork(env.deps, tenant.projectId, job.backup_id!);
        if (child?.exitCode !== null) throw new Error(`the worker process exited early: ${output}`);
        return b?.upload_id ? b : undefined;
      },
      40_000,
    ).catch(async (err: unknown) => {
      const state = { job: await getJobItem(env.deps, job.id), backup: await getBackupForWork(env.deps, tenant.projectId, job.backup_id!) };
      throw new Error(`${String(err)}; worker output: ${output}; state: ${JSON.stringify(state)}`);
    });
    // Longer than the lease: the heartbeat keeps it alive, and a second delivery is ignored.
    await new Promise((r) => setTimeout(r, 5000));
    const alive = await getJobItem(env.deps, job.id);
    expect(alive).toMatchObject({ state: "running", claimed_by: "crash-worker", attempts: 1 });
    expect(Date.parse(alive!.lease_expires_at!)).toBeGreaterThan(Date.now());
    expect(await runJob(env.deps, job.id, undefined, fastOptions)).toMatchObject({ status: "ignored", ack: true });

    // act 2: kill -9, wait for the lease to lapse, and let another worker take over
    process.kill(-child.pid!, "SIGKILL");
    await waitFor("the job lease and the lock lease to lapse", async () => {
      const j = await getJobItem(env.deps, job.id);
      // The lock may have been renewed a beat after the job lease was (the kill can fall between
      // the two renewals); a busy lock would only delay the retry, but this test wants it now.
      const lock = await getLock(env.deps, job.locked_resource!);
      // Leases are stored to the second: lapsed means a whole second past it.
      const lapsed = (at: string | null | undefined) => Date.parse(at ?? "") + 1000 < Date.now();
      return j && lapsed(j.lease_expires_at) && (!lock || lapsed(lock.lease_expires_at));
    });
    const outcome = await runJob(env.deps, job.id, undefined, fastOptions);

    // assess
    expect(outcome).toMatchObject({ status: "completed", ack: true });
    const settled = await getJobItem(env.deps, job.id);
    expect(settled, JSON.stringify(settled)).toMatchObject({ state: "completed", attempts: 2, claimed_by: env.deps.workerId });
    expect(await getLock(env.deps, settled!.locked_resource!)).toBeUndefined();
    const backup = await getBackupForWork(env.deps, tenant.projectId, job.backup_id!);
    expect(backup).toMatchObject({ state: "completed", verification_state: "verified", row_counts: { "public.filler": 400000 } });
    expect(backup!.upload_id ?? null).toBeNull();
    expect(sha256(await objectBytes(env.deps, backup!.backup_key))).toBe(backup!.sha256);
    // The dead worker's multipart upload was aborted...
    const part = env.deps.s3.send(
      new UploadPartCommand({ Bucket: env.deps.bucket, Key: backup!.backup_key, UploadId: inFlight.upload_id!, PartNumber: 2, Body: Buffer.from("x") }),
    );
    await expect(part).rejects.toMatchObject({ name: "NoSuchUpload" });
    // ...and no other upload is left: once the artifact is gone, the bucket is empty enough to delete.
    await env.deps.s3.send(new DeleteObjectCommand({ Bucket: env.deps.bucket, Key: backup!.backup_key }));
    await env.deps.s3.send(new DeleteBucketCommand({ Bucket: env.deps.bucket }));
  });
});
