import { createTestEnv, type TestEnv } from "../support/env.ts";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { listBackups } from "../../core/backups/backups.ts";
import { reapJobs } from "../../core/dispatch/reaper.ts";
import { getLock } from "../../core/jobs/locks.ts";
import { runJob } from "../../core/worker/run.ts";
import { getPreview, previewPassword } from "../../core/previews/previews.ts";
import { body } from "../support/spec.ts";
import { fastOptions, runQueueUntilSettled } from "../worker/support.ts";
import {
  allowsConnections,
  appProject,
  approval,
  as,
  changedPreview,
  existing,
  hashesAs,
  hashesOf,
  jobOf,
  promoteRequest,
  promotionOf,
  verifiedBackup,
  type AppProject,
} from "./support.ts";

/**
 * A worker process killed (SIGKILL) at each phase of a promote, then the job redelivered to
 * another worker: the project's database always ends with all the new data, accepts connections,
 * and there is exactly one safety backup and one pre-promote preview with all the old data. At
 * the moment of the kill it holds all the old data or all the new, never neither.
 */
let env: TestEnv;
let child: ChildProcess | undefined;
beforeAll(async () => {
  env = await createTestEnv();
});
afterEach(() => {
  try {
    if (child?.pid && child.exitCode === null && child.signalCode === null) process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
  child = undefined;
});
afterAll(async () => {
  await env?.cleanup();
});

/** Runs the worker process until it kills itself at `phase`. */
async function workerKilledAt(phase: string): Promise<void> {
  child = spawn(join(process.cwd(), "node_modules", ".bin", "tsx"), [join("test", "promote", "fixtures", "promote-worker.ts")], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: `${join(process.cwd(), "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
      ...env.serviceEnv(),
      CAPYDB_WORKER_ID: `doomed-${phase}`,
      LOG_LEVEL: "ERROR",
      CRASH_AT: phase,
    },
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const proc = child;
  const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the worker never reached ${phase}: ${output}`)), 150_000);
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
  // tsx reports its child's SIGKILL as exit code 137.
  expect(exit.signal === "SIGKILL" || exit.code === 137, `${JSON.stringify(exit)} ${output}`).toBe(true);
  expect(output).toContain(`killed at ${phase}`);
}

async function promoteScenario() {
  const p = await appProject(env);
  const backup = await verifiedBackup(env, p.tenant);
  const preview = await changedPreview(env, p, backup);
  const oldHashes = await hashesOf(env, p.database);
  const newHashes = await hashesOf(env, preview.database_name);
  const key = await p.tenant.key(["projects:write", "projects:read"]);
  const { res, json } = await promoteRequest(env, key, preview.id, await approval(env, p.tenant.projectId, p.tenant.organizationId));
  expect(res.status, JSON.stringify(json)).toBe(202);
  return { p, preview, oldHashes, newHashes, jobId: json.job.id as string };
}

/** After the recovery: one consistent outcome. */
async function assessRecovered(p: AppProject, jobId: string, oldHashes: Record<string, string>, newHashes: Record<string, string>) {
  const [done] = await runQueueUntilSettled(env.deps, [jobId], fastOptions, 180_000);
  expect(done, JSON.stringify(done)).toMatchObject({ state: "completed", error: null });
  expect(done!.attempts).toBeGreaterThanOrEqual(2);
  expect(await allowsConnections(env, p.database)).toBe(true);
  expect(await hashesAs(env, p.role, p.database)).toEqual(newHashes);
  const promotion = await promotionOf(env, jobId);
  expect(promotion.phase).toBe("done");
  const parked = (await getPreview(env.deps, promotion.parked_preview_id))!;
  expect(parked.state).toBe("ready");
  expect(await hashesAs(env, parked.role_name, parked.database_name, previewPassword(env.deps, parked))).toEqual(oldHashes);
  const safety = (await listBackups(env.deps, p.tenant.projectId, 100)).items.filter((b) => b.label.startsWith("safety backup"));
  expect(safety.map((b) => [b.id, b.state, b.verification_state])).toEqual([[promotion.safety_backup_id, "completed", "verified"]]);
  expect(await existing(env, [promotion.incoming_database])).toEqual([]);
  expect(await getLock(env.deps, done!.locked_resource!)).toBeUndefined();
  return promotion;
}

describe("a worker killed during a promote", () => {
  it("right after requesting its safety backup: the next worker waits for that same backup (no second one) and completes", async () => {
    const s = await promoteScenario();
    await workerKilledAt("safety_backup_requested");
    expect(await hashesAs(env, s.p.role, s.p.database)).toEqual(s.oldHashes);
    await assessRecovered(s.p, s.jobId, s.oldHashes, s.newHashes);
  }, 300_000);

  it("just before the rename (connections refused, sessions ended): the project's database is still whole, and the next worker completes the swap and lets connections in", async () => {
    const s = await promoteScenario();
    const promotion = await promotionOf(env, s.jobId);
    await workerKilledAt("rename");
    // At the kill: both databases under their old names; the project's is the old data, refusing connections.
    expect((await existing(env, [s.p.database, promotion.incoming_database, promotion.parked_database])).sort()).toEqual(
      [s.p.database, promotion.incoming_database].sort(),
    );
    await assessRecovered(s.p, s.jobId, s.oldHashes, s.newHashes);
  }, 300_000);

  it("right after the swap: the project already holds all the new data; the next worker finishes (pre-promote preview ready)", async () => {
    const s = await promoteScenario();
    const promotion = await promotionOf(env, s.jobId);
    await workerKilledAt("swapped");
    expect(await hashesAs(env, s.p.role, s.p.database)).toEqual(s.newHashes);
    expect(await getPreview(env.deps, promotion.parked_preview_id)).toMatchObject({ state: "provisioning" });
    await assessRecovered(s.p, s.jobId, s.oldHashes, s.newHashes);
  }, 300_000);
});

describe("a promote whose last attempt is killed", () => {
  it("just before the rename: the reaper fails it and sends it once more; that delivery lets connections in again and drops the parked role; the old data stays", async () => {
    const s = await promoteScenario();
    const { UpdateCommand } = await import("@aws-sdk/lib-dynamodb");
    const { keys } = await import("../../core/db/keys.ts");
    await env.deps.ddb.send(
      new UpdateCommand({
        TableName: env.deps.table,
        Key: keys.job(s.jobId),
        UpdateExpression: "SET max_attempts = :one",
        ExpressionAttributeValues: { ":one": 1 },
      }),
    );
    const promotion = await promotionOf(env, s.jobId);
    await workerKilledAt("rename");
    expect(await allowsConnections(env, s.p.database)).toBe(false);

    await new Promise((r) => setTimeout(r, 5000)); // the 4 s lease lapses
    const report = await reapJobs(env.deps);
    expect(report.failed, JSON.stringify(report)).toBe(1);
    expect(report.jobIds).toContain(s.jobId);
    const outcome = await runJob(env.deps, s.jobId, undefined, fastOptions);
    expect(outcome).toMatchObject({ status: "ignored", reason: "job already failed" });

    const failed = await jobOf(env, s.jobId);
    expect(failed, JSON.stringify(failed)).toMatchObject({ state: "failed" });
    expect(await allowsConnections(env, s.p.database)).toBe(true);
    expect(await hashesAs(env, s.p.role, s.p.database)).toEqual(s.oldHashes);
    expect(await existing(env, [promotion.parked_database])).toEqual([]);
    expect(await env.query("postgres", "SELECT 1 FROM pg_roles WHERE rolname = $1", [promotion.parked_database])).toEqual([]);
    expect(await getPreview(env.deps, promotion.parked_preview_id)).toMatchObject({ state: "deleted", error: expect.stringMatching(/failed before the swap/) });
  }, 300_000);
});

describe("a worker killed during an overwrite restore", () => {
  it("as it starts restoring into the hidden database: the project's data is untouched; the next worker restores afresh, takes one safety backup and swaps", async () => {
    const p = await appProject(env, { environment: "non_production" });
    const backup = await verifiedBackup(env, p.tenant);
    const atBackup = await hashesOf(env, p.database);
    // The application writes on after the backup: that is what the overwrite replaces.
    const c = as(env, p.role, p.database);
    await c.connect();
    await c.query("INSERT INTO customers (name) SELECT 'later-' || g FROM generate_series(1, 10) g");
    await c.query("DELETE FROM orders WHERE id <= 40");
    await c.end();
    const current = await hashesOf(env, p.database);
    expect(current).not.toEqual(atBackup);
    const key = await p.tenant.key(["backups:write", "backups:read"]);
    const res = await env.app().request(`/v1/projects/${p.tenant.projectId}/restores`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({
        backup_key: `projects/${p.tenant.projectId}/backups/${backup.backup_id}.dump`,
        target_kind: "project",
        approval_token: await approval(env, p.tenant.projectId, p.tenant.organizationId, "project.restore_overwrite"),
      }),
    });
    const json = await body(res);
    expect(res.status, JSON.stringify(json)).toBe(202);

    await workerKilledAt("restore");
    expect(await hashesAs(env, p.role, p.database)).toEqual(current);
    expect(await allowsConnections(env, p.database)).toBe(true);

    const promotion = await assessRecovered(p, json.job.id, current, atBackup);
    expect(promotion.progress).toEqual(
      expect.arrayContaining([expect.stringMatching(new RegExp(`backup ${backup.backup_id} restored into a hidden database and checked`))]),
    );
  }, 300_000);
});
