import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackupForWork, markBackupPending, recordBackupArtifact } from "../../core/backups/backups.ts";
import { createAwsClients } from "../../core/aws/clients.ts";
import { claimJob, getJobItem } from "../../core/jobs/jobs.ts";
import { acquireLock, getLock } from "../../core/jobs/locks.ts";
import { runJob } from "../../core/worker/run.ts";
import { throwawayDatabaseName } from "../../core/pg/scratch.ts";
import { LOCAL_REGION } from "../../local/stack.ts";
import { fastOptions, objectBytes, postBackup, sha256, smallDatabase, waitFor } from "./support.ts";

let env: TestEnv;
let tenant: Tenant;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: await smallDatabase(env) });
});
afterAll(async () => env?.cleanup());

/**
 * A DynamoDB client whose lock renewals hang forever, as calls on a dead connection do: the
 * heartbeat of an attempt using it can never renew. (A client middleware: a real DynamoDB cannot
 * be made to hang one kind of call.)
 */
function hangingRenewals() {
  const { ddb } = createAwsClients({ region: LOCAL_REGION, endpoint: env.infra.endpoint });
  let hung = 0;
  ddb.middlewareStack.add(
    (next, context) => async (args) => {
      const key = (args.input as { Key?: { pk?: unknown } }).Key?.pk;
      if (context.commandName === "UpdateItemCommand" && typeof key === "string" && key.startsWith("LOCK#")) {
        hung++;
        return new Promise<never>(() => undefined);
      }
      return next(args);
    },
    { step: "initialize", name: "hangLockRenewals" },
  );
  return { ddb, hung: () => hung };
}

describe("an attempt whose heartbeat hangs past its lease", () => {
  it("stops itself before the lease ends; the next attempt completes and is verified, and the stale one's writes are refused", async () => {
    const job = (await getJobItem(env.deps, (await postBackup(env, tenant)).id))!;
    const stale = hangingRenewals();
    let releaseStale!: () => void;
    const staleMayVerify = new Promise<void>((r) => (releaseStale = r));

    // act 1: attempt 1 dumps, then waits before its restore check until attempt 2 is done
    const first = runJob({ ...env.deps, ddb: stale.ddb, workerId: "stale-worker" }, job.id, undefined, {
      ...fastOptions,
      leaseMs: 6000,
      heartbeatMs: 1000,
      hooks: { beforeVerify: () => staleMayVerify },
    });
    await waitFor("attempt 1's lease and lock to lapse", async () => {
      const j = await getJobItem(env.deps, job.id);
      const lock = await getLock(env.deps, job.locked_resource!);
      const lapsed = (at: string | null | undefined) => Date.parse(at ?? "") + 1000 < Date.now();
      return j?.attempts === 1 && lapsed(j.lease_expires_at) && (!lock || lapsed(lock.lease_expires_at));
    });
    expect(stale.hung(), "a renewal hung").toBeGreaterThan(0);

    // act 2: attempt 2 (another worker) runs while attempt 1 is still alive; its writes are fenced
    let fencedWhileRunning: unknown[] = [];
    const second = await runJob(env.deps, job.id, undefined, {
      ...fastOptions,
      hooks: {
        beforeVerify: async () => {
          const asFirst = { backup: { project_id: job.project_id, id: job.backup_id!, job_id: job.id }, attempt: 1 };
          fencedWhileRunning = [
            await recordBackupArtifact(env.deps, asFirst, {
              size_bytes: 1,
              sha256: "0".repeat(64),
              pg_dump_version: "x",
              server_version: "x",
              row_counts: {},
              dump_ms: 1,
            }),
            await markBackupPending(env.deps, asFirst),
          ];
        },
      },
    });
    releaseStale();
    const firstOutcome = await first;

    // assess
    expect(second, JSON.stringify(second)).toMatchObject({ status: "completed", ack: true });
    expect(firstOutcome, JSON.stringify(firstOutcome)).toMatchObject({ status: "ignored", reason: expect.stringMatching(/lease could not be renewed/) });
    expect(fencedWhileRunning, "attempt 1's writes during attempt 2").toEqual([undefined, undefined]);
    const settled = await getJobItem(env.deps, job.id);
    expect(settled).toMatchObject({ state: "completed", attempts: 2, claimed_by: env.deps.workerId });
    const backup = (await getBackupForWork(env.deps, job.project_id, job.backup_id!))!;
    expect(backup).toMatchObject({ state: "completed", verification_state: "verified", attempt: 2 });
    expect(sha256(await objectBytes(env.deps, backup.backup_key))).toBe(backup.sha256);
    expect(throwawayDatabaseName(backup.id, 1)).not.toBe(throwawayDatabaseName(backup.id, 2));
    const scratch = await env.query("postgres", "SELECT datname FROM pg_database WHERE datname LIKE $1", [`${throwawayDatabaseName(backup.id)}%`]);
    expect(scratch).toEqual([]);
    expect(await getLock(env.deps, job.locked_resource!)).toBeUndefined();
  });
});

describe("a killed attempt whose lock outlives its job lease", () => {
  it("is taken over by the job's next attempt, which completes it at once, while another job still may not take the lock", async () => {
    // prepare: attempt 1 claimed the job and its database lock, then died; its last heartbeat
    // renewed the lock a moment after the job (the lock's lease ends later than the job's).
    const job = (await getJobItem(env.deps, (await postBackup(env, tenant)).id))!;
    const claimed = (await claimJob(env.deps, job, "killed-worker", 1_000))!;
    expect(claimed).toBeDefined();
    const resource = claimed.locked_resource!;
    expect(await acquireLock(env.deps, resource, `${job.id}#${claimed.attempts}`, 120_000)).toBe(true);
    await waitFor("the job lease to lapse", async () => Date.parse((await getJobItem(env.deps, job.id))!.lease_expires_at ?? "") + 1000 < Date.now());

    // another job may not take a live lock
    expect(await acquireLock(env.deps, resource, "job_someone_else#1", 60_000, "job_someone_else#")).toBe(false);

    // act: the job's next attempt
    const outcome = await runJob(env.deps, job.id, undefined, fastOptions);

    // assess: it ran now (not "waiting" two minutes for the dead attempt's lock), and let the lock go
    expect(outcome).toMatchObject({ status: "completed", ack: true });
    expect(await getJobItem(env.deps, job.id)).toMatchObject({ state: "completed", attempts: 2 });
    expect(await getLock(env.deps, resource)).toBeUndefined();
  }, 60_000);
});
