import { createTestEnv, type TestEnv } from "../support/env.ts";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { getBackupForWork } from "../../core/backups/backups.ts";
import { getExport } from "../../core/exports/exports.ts";
import { reapJobs, defaultReaperOptions } from "../../core/dispatch/reaper.ts";
import { getJobItem, type JobItem } from "../../core/jobs/jobs.ts";
import { TaskLaunchError, type TaskLauncher } from "../../core/tasks/launcher.ts";
import { localTaskLauncher, type LocalTaskLauncher } from "../../core/tasks/local.ts";
import type { OffloadOptions, WorkerOptions } from "../../core/worker/options.ts";
import { pickPgTools } from "../../core/pg/pgtools.ts";
import { runJob } from "../../core/worker/run.ts";
import { fastOptions, FILLER_OVER_ONE_PART, objectBytes, postBackup, runQueueUntilSettled, sha256, waitFor } from "./support.ts";
import { appProject, approval, as, changedPreview, hashesAs, hashesOf, promoteRequest, promotionOf, verifiedBackup } from "../promote/support.ts";

const MB = 1024 * 1024;
/** A shared, busy 2-core machine: generous bounds (nothing here asserts a duration). */
const SLOW = 240_000;

let env: TestEnv;
let dir: string;
const launchers: LocalTaskLauncher[] = [];
beforeAll(async () => {
  env = await createTestEnv();
  dir = mkdtempSync(join(tmpdir(), "capydb-tasks-"));
});
afterEach(async () => {
  await Promise.all(launchers.splice(0).map((l) => l.stopAll(1000)));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await env?.cleanup();
});

/** Real child-process tasks with this file's resources and a short task lease (seconds, not minutes). */
function tasks(extra: Record<string, string> = {}): LocalTaskLauncher {
  const l = localTaskLauncher({
    stdio: process.env.TEST_LOG_LEVEL ? "inherit" : "ignore",
    env: {
      PATH: process.env.PATH,
      ...env.serviceEnv(),
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "ERROR",
      CAPYDB_TASK_LEASE_MS: "4000",
      CAPYDB_TASK_HEARTBEAT_MS: "1000",
      ...extra,
    },
  });
  launchers.push(l);
  return l;
}

/** Counts the launches that reached the real launcher (a spy: every call is passed through). */
function counted(inner: TaskLauncher): TaskLauncher & { calls: number } {
  const spy = {
    kind: inner.kind,
    calls: 0,
    launch: (input: Parameters<TaskLauncher["launch"]>[0]) => {
      spy.calls++;
      return inner.launch(input);
    },
  };
  return spy;
}

const withOffload = (launcher: TaskLauncher, thresholdBytes = 1 * MB): Partial<WorkerOptions> => ({
  ...fastOptions,
  offload: { launcher, thresholdBytes, leaseMs: 20_000 } satisfies OffloadOptions,
});

const pidOf = (job: JobItem | undefined) => Number(/^local-task:(\d+)$/.exec(job?.claimed_by ?? "")?.[1]);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The job's backup, once settled (the job's transition commits first, the backup follows). */
async function expectVerified(job: JobItem) {
  const backup = await waitFor("the backup to settle", async () => {
    const b = await getBackupForWork(env.deps, job.project_id, job.backup_id!);
    return b && b.state !== "pending" && b.state !== "running" ? b : undefined;
  });
  expect(backup, JSON.stringify(backup)).toMatchObject({ state: "completed", verification_state: "verified" });
  expect(sha256(await objectBytes(env.deps, backup!.backup_key))).toBe(backup!.sha256);
  return backup!;
}

describe("jobs above the threshold run as a task (threshold 1 MB, tasks are child processes)", () => {
  it(
    "a backup goes through the task path and ends verified, the task's process gone",
    async () => {
      // prepare: the demo database is several MB, over the 1 MB threshold
      const tenant = await env.seedTenant();
      const job = await postBackup(env, tenant);
      const launcher = tasks();
      // act: the worker loop with the same handler as Lambda, offloading above 1 MB
      const [settled] = await runQueueUntilSettled(env.deps, [job.id], withOffload(launcher), SLOW);
      // assess: the job names the task that ran it, and that task has exited
      expect(settled, JSON.stringify(settled)).toMatchObject({ state: "completed", attempts: 1, error: null });
      expect(settled!.claimed_by).toMatch(/^local-task:\d+$/);
      const pid = pidOf(settled);
      expect(await launcher.exited(pid)).toBe(0);
      expect(alive(pid)).toBe(false);
      expect(launcher.running()).toEqual([]);
      const backup = await expectVerified(settled!);
      expect(backup.size_bytes).toBeGreaterThan(0);
    },
    SLOW * 2,
  );

  it(
    "an export goes through the task path and completes, its artifact matching its SHA-256, the task's process gone",
    async () => {
      // prepare
      const tenant = await env.seedTenant();
      const key = await tenant.key(["backups:read", "backups:write", "jobs:read"]);
      const res = await env.app().request(`/v1/projects/${tenant.projectId}/exports`, { method: "POST", headers: { authorization: `Bearer ${key}` } });
      const created = (await res.json()) as { export_id: string; job: { id: string } };
      expect(res.status, JSON.stringify(created)).toBe(202);
      const launcher = tasks();
      // act
      const [settled] = await runQueueUntilSettled(env.deps, [created.job.id], withOffload(launcher), SLOW);
      // assess
      expect(settled, JSON.stringify(settled)).toMatchObject({ type: "project.export", state: "completed", attempts: 1, error: null });
      const pid = pidOf(settled);
      expect(settled!.claimed_by).toBe(`local-task:${pid}`);
      expect(await launcher.exited(pid)).toBe(0);
      expect(alive(pid)).toBe(false);
      const exp = await waitFor("the export to settle", async () => {
        const e = await getExport(env.deps, tenant.projectId, created.export_id);
        return e?.state === "completed" || e?.state === "failed" ? e : undefined;
      });
      expect(exp, JSON.stringify(exp)).toMatchObject({ state: "completed" });
      expect(sha256(await objectBytes(env.deps, exp.export_key))).toBe(exp.sha256);
    },
    SLOW * 2,
  );

  it(
    "a restore into a new preview goes through the task path and ends ready, every row there, the task's process gone",
    async () => {
      // prepare: a database whose backup artifact is over 1 MB, backed up (through a task too)
      const db = await env.createDatabase({ prefix: "taskrestore" });
      await env.query(db, FILLER_OVER_ONE_PART);
      const tenant = await env.seedTenant({ database: db });
      const launcher = tasks();
      const [backedUp] = await runQueueUntilSettled(env.deps, [(await postBackup(env, tenant)).id], withOffload(launcher), SLOW);
      const backup = await expectVerified(backedUp!);
      expect(backup.size_bytes).toBeGreaterThan(1 * MB);
      const key = await tenant.key(["backups:read", "backups:write", "jobs:read", "projects:read", "projects:write"]);
      const call = async (method: string, path: string, payload?: unknown) => {
        const res = await env.app().request(path, {
          method,
          headers: { authorization: `Bearer ${key}`, ...(payload === undefined ? {} : { "content-type": "application/json" }) },
          body: payload === undefined ? undefined : JSON.stringify(payload),
        });
        return { status: res.status, body: (await res.json()) as any };
      };
      const created = await call("POST", `/v1/projects/${tenant.projectId}/restores`, { backup_key: backup.backup_key, preview_name: "from-a-task" });
      expect(created.status, JSON.stringify(created.body)).toBe(202);
      // act
      const [settled] = await runQueueUntilSettled(env.deps, [created.body.job.id], withOffload(launcher), SLOW);
      // assess: the task ran it, exited, and the preview holds every row of the snapshot
      expect(settled, JSON.stringify(settled)).toMatchObject({ type: "project.restore", state: "completed", attempts: 1 });
      const pid = pidOf(settled);
      expect(settled!.claimed_by).toBe(`local-task:${pid}`);
      expect(await launcher.exited(pid)).toBe(0);
      expect(alive(pid)).toBe(false);
      const preview = await waitFor("the preview to be ready", async () => {
        const got = await call("GET", `/v1/preview-databases/${created.body.job.preview_database_id}`);
        return got.body.preview?.state === "ready" || got.body.preview?.state === "failed" ? got.body.preview : undefined;
      });
      expect(preview, JSON.stringify(preview)).toMatchObject({ state: "ready", last_error: null, source_kind: "backup", source_backup_key: backup.backup_key });
      expect(await env.query(preview.database_name, "SELECT count(*)::int AS n FROM filler")).toEqual([{ n: 400000 }]);
    },
    SLOW * 3,
  );

  it(
    "a promote whose safety backup is large: the backup runs as a task, the promote waits for it in the worker and swaps the data in",
    async () => {
      // prepare: the application's project, grown over the threshold by its own role, a verified
      // backup and a preview restored from it and changed (both in this process: no offload)
      const p = await appProject(env);
      const app = as(env, p.role, p.database);
      await app.connect();
      await app.query(FILLER_OVER_ONE_PART).finally(() => app.end());
      const backup = await verifiedBackup(env, p.tenant);
      const preview = await changedPreview(env, p, backup);
      const newHashes = await hashesOf(env, preview.database_name);
      const key = await p.tenant.key(["projects:write", "projects:read", "jobs:read"]);
      const launcher = tasks();

      // act: the promote, with the worker offloading what is over 1 MB
      const { res, json } = await promoteRequest(env, key, preview.id, await approval(env, p.tenant.projectId, p.tenant.organizationId));
      expect(res.status, JSON.stringify(json)).toBe(202);
      const [done] = await runQueueUntilSettled(env.deps, [json.job.id], withOffload(launcher), SLOW);

      // assess: the promote ran here (it moves no data itself), its safety backup in a task that has
      // exited, verified; the project's database holds the preview's data
      expect(done, JSON.stringify(done)).toMatchObject({ type: "project.promote_preview", state: "completed", error: null });
      expect(done!.claimed_by).not.toMatch(/task/);
      const promotion = await promotionOf(env, done!.id);
      const safetyJob = (await getJobItem(env.deps, promotion.safety_job_id!))!;
      expect(safetyJob, JSON.stringify(safetyJob)).toMatchObject({ type: "project.backup", state: "completed" });
      const pid = pidOf(safetyJob);
      expect(safetyJob.claimed_by).toBe(`local-task:${pid}`);
      expect(await launcher.exited(pid)).toBe(0);
      expect(alive(pid)).toBe(false);
      const safety = await expectVerified(safetyJob);
      expect(safety.size_bytes).toBeGreaterThan(1 * MB);
      expect(safety.row_counts).toMatchObject({ "public.filler": 400000, "public.orders": 400, "public.customers": 50 });
      expect(await hashesAs(env, p.role, p.database)).toEqual(newHashes);
      expect(launcher.running()).toEqual([]);
    },
    SLOW * 3,
  );

  it(
    "a job under the threshold stays in the worker: no task is launched",
    async () => {
      const tenant = await env.seedTenant();
      const job = await postBackup(env, tenant);
      const launcher = counted(tasks());
      const [settled] = await runQueueUntilSettled(env.deps, [job.id], withOffload(launcher, 10 * 1024 * MB), SLOW);
      expect(settled, JSON.stringify(settled)).toMatchObject({ state: "completed", claimed_by: env.deps.workerId });
      expect(launcher.calls).toBe(0);
      await expectVerified(settled!);
    },
    SLOW * 2,
  );

  it(
    "two claims of one job launch one task",
    async () => {
      // prepare
      const tenant = await env.seedTenant();
      const job = await postBackup(env, tenant);
      const local = tasks();
      const launcher = counted(local);
      // act: two deliveries of the same job handled at once
      const outcomes = await Promise.all([
        runJob(env.deps, job.id, undefined, withOffload(launcher)),
        runJob(env.deps, job.id, undefined, withOffload(launcher)),
      ]);
      // assess: one launched, the other saw the claim and left it alone
      expect(outcomes.map((o) => o.status).sort(), JSON.stringify(outcomes)).toEqual(["ignored", "launched"]);
      expect(launcher.calls).toBe(1);
      const settled = await waitFor(
        "the task to finish the job",
        async () => {
          const j = await getJobItem(env.deps, job.id);
          return j?.state === "completed" || j?.state === "failed" ? j : undefined;
        },
        SLOW,
      );
      expect(settled, JSON.stringify(settled)).toMatchObject({ state: "completed", attempts: 1 });
      await expectVerified(settled);
      expect(await local.exited(pidOf(settled))).toBe(0);
    },
    SLOW * 2,
  );

  it(
    "a launch that fails is retried with backoff, the job's error saying why, then runs as a task",
    async () => {
      // prepare: the first launch fails as RunTask does without Fargate capacity (a fault a local
      // child process cannot produce, so this launcher throws it once, then starts real tasks)
      const tenant = await env.seedTenant();
      const job = await postBackup(env, tenant);
      const real = tasks();
      let failures = 0;
      const flaky: TaskLauncher = {
        kind: "local",
        async launch(input) {
          if (failures++ === 0)
            throw new TaskLaunchError("ECS started no task (RunTask reported a failure, such as no Fargate capacity or the account's task quota)");
          return real.launch(input);
        },
      };
      // act 1: the first delivery
      const first = await runJob(env.deps, job.id, undefined, withOffload(flaky));
      // assess 1: pending again, due later, the reason on the job
      expect(first, JSON.stringify(first)).toMatchObject({ status: "retrying", ack: true });
      const waiting = await getJobItem(env.deps, job.id);
      expect(waiting, JSON.stringify(waiting)).toMatchObject({ state: "pending", attempts: 1, retry_classification: "transient" });
      expect(waiting!.error).toMatch(/^Could not start a task for this backup \(.+ MB to move.*\): ECS started no task .*Fargate capacity/);
      expect(Date.parse(waiting!.available_at!)).toBeGreaterThan(Date.parse(waiting!.updated_at));
      // act 2: the retry message (sent with the backoff delay) is picked up by the worker loop
      const [settled] = await runQueueUntilSettled(env.deps, [job.id], withOffload(flaky), SLOW);
      // assess 2
      expect(settled, JSON.stringify(settled)).toMatchObject({ state: "completed", attempts: 2, error: null });
      expect(settled!.claimed_by).toMatch(/^local-task:\d+$/);
      expect(failures).toBe(2);
      await expectVerified(settled!);
    },
    SLOW * 2,
  );

  it(
    "a task killed mid-dump lets its lease lapse; the reaper re-enqueues the job and a new task completes it",
    async () => {
      // prepare: pg_dump that writes the real dump and hangs, the first time only
      const real = await pickPgTools({ major: 15, text: "15" }, []);
      const bin = join(dir, "pg", String(real.major), "bin");
      mkdirSync(bin, { recursive: true });
      const marker = join(dir, "stalled-once");
      writeFileSync(
        join(bin, "pg_dump"),
        `#!/bin/sh\ncase "$1" in --version|-V) exec "${real.pgDump}" "$@";; esac\nif [ ! -e "${marker}" ]; then touch "${marker}"; "${real.pgDump}" "$@" --compress=0; exec sleep 300; fi\nexec "${real.pgDump}" "$@"\n`,
      );
      chmodSync(join(bin, "pg_dump"), 0o755);
      symlinkSync(real.pgRestore, join(bin, "pg_restore"));
      const db = await env.createDatabase({ prefix: "taskcrash" });
      await env.query(db, FILLER_OVER_ONE_PART);
      const tenant = await env.seedTenant({ database: db });
      const job = (await getJobItem(env.deps, (await postBackup(env, tenant)).id))!;
      const launcher = tasks({ CAPYDB_PG_BIN_DIRS: join(dir, "pg") });

      // act 1: launched; the task takes the claim and stalls with an upload in flight
      expect(await runJob(env.deps, job.id, undefined, withOffload(launcher))).toMatchObject({ status: "launched" });
      const stalled = await waitFor(
        "the task to be mid-dump",
        async () => {
          const [j, b] = [await getJobItem(env.deps, job.id), await getBackupForWork(env.deps, tenant.projectId, job.backup_id!)];
          return b?.upload_id && existsSync(marker) ? j : undefined;
        },
        SLOW,
      );
      const firstPid = pidOf(stalled);
      expect(stalled?.claimed_by).toBe(`local-task:${firstPid}`);
      expect(launcher.running()).toEqual([firstPid]);

      // act 2: kill the task's process group (node and pg_dump), as ECS stopping it would
      process.kill(-firstPid, "SIGKILL");
      await launcher.exited(firstPid);
      const lapsed = await waitFor(
        "the task's lease to lapse",
        async () => {
          const j = await getJobItem(env.deps, job.id);
          return j && Date.parse(j.lease_expires_at ?? "") + 1000 < Date.now() ? j : undefined;
        },
        SLOW,
      );
      expect(lapsed).toMatchObject({ state: "running", attempts: 1 });
      // The dispatcher's reaper finds the lapsed lease and sends the job again.
      const reaped = await reapJobs(env.deps, defaultReaperOptions);
      expect(reaped.jobIds).toContain(job.id);
      const [settled] = await runQueueUntilSettled(env.deps, [job.id], withOffload(launcher), SLOW);

      // assess: a second task ran attempt 2 to a verified backup
      expect(settled, JSON.stringify(settled)).toMatchObject({ state: "completed", attempts: 2 });
      const secondPid = pidOf(settled);
      expect(secondPid).not.toBe(firstPid);
      expect(await launcher.exited(secondPid)).toBe(0);
      const backup = await expectVerified(settled!);
      expect(backup.row_counts).toEqual({ "public.filler": 400000 });
    },
    SLOW * 2,
  );
});
