import { createTestEnv, type TestEnv } from "../support/env.ts";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { getLock } from "../../core/jobs/locks.ts";
import { getPreview } from "../../core/previews/previews.ts";
import { pickPgTools } from "../../core/pg/pgtools.ts";
import { runJob } from "../../core/worker/run.ts";
import { throwawayDatabaseName } from "../../core/pg/scratch.ts";
import { body } from "../support/spec.ts";
import { fastOptions, postBackup, runQueueUntilSettled, waitFor } from "./support.ts";

let env: TestEnv;
let dir: string;
let child: ChildProcess | undefined;
beforeAll(async () => {
  env = await createTestEnv();
  dir = mkdtempSync(join(tmpdir(), "capydb-restore-crash-"));
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

/** An installation whose pg_restore restores (the real one) and then hangs before exiting, as a stuck worker would. */
async function stallingRestore(): Promise<string> {
  const real = await pickPgTools({ major: 15, text: "15" }, []);
  const bin = join(dir, "pg", String(real.major), "bin");
  mkdirSync(bin, { recursive: true });
  symlinkSync(real.pgDump, join(bin, "pg_dump"));
  writeFileSync(join(bin, "pg_restore"), `#!/bin/sh\n"${real.pgRestore}" "$@"\nexec sleep 300\n`);
  chmodSync(join(bin, "pg_restore"), 0o755);
  return join(dir, "pg");
}

describe("a worker killed in the middle of a restore", () => {
  it("the job is retried; in the end one ready preview with the data, and no stray database, role or lock", async () => {
    // prepare: a verified backup of the demo shop, and a restore of it requested over the API
    const tenant = await env.seedTenant();
    const backupJob = await postBackup(env, tenant);
    const [made] = await runQueueUntilSettled(env.deps, [backupJob.id]);
    expect(made?.state, JSON.stringify(made)).toBe("completed");
    const key = await tenant.key(["backups:read", "backups:write", "projects:read"]);
    const res = await env.app().request(`/v1/projects/${tenant.projectId}/restores`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ backup_key: `projects/${tenant.projectId}/backups/${made!.backup_id}.dump` }),
    });
    const { job } = await body(res);
    expect(res.status, JSON.stringify(job)).toBe(202);
    const previewId = job.preview_database_id as string;
    const pgDir = await stallingRestore();

    // act 1: a separate worker process restores, then hangs in pg_restore; it is killed there
    child = spawn(join(process.cwd(), "node_modules", ".bin", "tsx"), [join("test", "worker", "fixtures", "crash-worker.ts")], {
      detached: true,
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
    const preview = (await getPreview(env.deps, previewId))!;
    await waitFor(
      "the dead-to-be worker to have restored the tables",
      async () => {
        if (child?.exitCode !== null) throw new Error(`the worker process exited early: ${output}`);
        const rows = await env
          .query(preview.database_name, "SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = 'order_items'")
          .catch(() => []);
        return rows.length > 0;
      },
      60_000,
    );
    await new Promise((r) => setTimeout(r, 2000));
    expect(await getPreview(env.deps, previewId)).toMatchObject({ state: "provisioning", action_started: true });
    process.kill(-child.pid!, "SIGKILL");

    // act 2: once the leases lapse, another worker (the real tools) takes the job over
    await waitFor("the job lease and the lock lease to lapse", async () => {
      const j = await getJobItem(env.deps, job.id);
      const lock = await getLock(env.deps, j!.locked_resource!);
      const lapsed = (at: string | null | undefined) => Date.parse(at ?? "") + 1000 < Date.now();
      return j && lapsed(j.lease_expires_at) && (!lock || lapsed(lock.lease_expires_at));
    });
    // Before the takeover, vandalize the half-restored copy: the retry must not trust it.
    await env.query(preview.database_name, "DELETE FROM order_items WHERE order_id < 100");
    const outcome = await runJob(env.deps, job.id, undefined, fastOptions);

    // assess
    expect(outcome).toMatchObject({ status: "completed", ack: true });
    const settled = await getJobItem(env.deps, job.id);
    expect(settled, JSON.stringify(settled)).toMatchObject({ state: "completed", attempts: 2, type: "project.restore" });
    expect(await getLock(env.deps, settled!.locked_resource!)).toBeUndefined();
    expect(await getPreview(env.deps, previewId)).toMatchObject({ state: "ready", error: null });
    const [counts] = await env.query<{ items: string; customers: string }>(
      preview.database_name,
      "SELECT (SELECT count(*) FROM order_items) AS items, (SELECT count(*) FROM customers) AS customers",
    );
    const [source] = await env.query<{ items: string; customers: string }>(
      tenant.database,
      "SELECT (SELECT count(*) FROM order_items) AS items, (SELECT count(*) FROM customers) AS customers",
    );
    expect(counts).toEqual(source);
    // Exactly one database of this preview, the ready one, and no scratch copy of this backup
    // (other test files share the cluster, so only this job's names are looked at).
    const dbs = await env.query<{ datname: string }>("postgres", "SELECT datname FROM pg_database WHERE datname IN ($1, $2)", [
      preview.database_name,
      throwawayDatabaseName(made!.backup_id!),
    ]);
    expect(dbs.map((d) => d.datname)).toEqual([preview.database_name]);
    const roles = await env.query<{ rolname: string }>("postgres", "SELECT rolname FROM pg_roles WHERE rolname = $1", [preview.role_name]);
    expect(roles).toHaveLength(1);
  }, 240_000);
});
