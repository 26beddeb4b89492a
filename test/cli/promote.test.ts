import { createTestEnv, type TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import { startWorkerLoop } from "../../local/loops.ts";
import { freePort } from "../../local/wait.ts";
import { appProject, approval, changedPreview, hashesAs, hashesOf, verifiedBackup } from "../promote/support.ts";
import { fastOptions } from "../worker/support.ts";

/** `capydb previews promote` and `capydb restore --target-kind project` as customers run them: a child process over HTTP. */
let env: TestEnv;
let apiUrl: string;
let home: string;
let server: ServerType | undefined;

beforeAll(async () => {
  env = await createTestEnv();
  const port = await freePort();
  await new Promise<void>((resolve) => (server = serve({ fetch: env.app().fetch, port, hostname: "127.0.0.1" }, () => resolve())));
  apiUrl = `http://127.0.0.1:${port}`;
  home = mkdtempSync(join(tmpdir(), "capydb-cli-promote-"));
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  if (home) rmSync(home, { recursive: true, force: true });
  await env?.cleanup();
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  json(): any;
}
function capydb(args: string[], key: string, projectId: string): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CAPYDB_HOME: home,
    CAPYDB_API_URL: apiUrl,
    CAPYDB_API_KEY: key,
    CAPYDB_PROJECT: projectId,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "cli/capydb.ts", ...args], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
}
const show = (r: Run) => `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/** Runs `fn` with a worker loop consuming the queue (the CLI's --wait needs the jobs to run). */
async function withWorker<T>(fn: () => Promise<T>): Promise<T> {
  const worker = startWorkerLoop(env.deps, createWorkerHandler(env.deps, fastOptions), { concurrency: 2, waitSeconds: 1 });
  try {
    return await fn();
  } finally {
    await worker.stop();
  }
}

describe("capydb previews promote", () => {
  it("refuses without a token (exit 2, saying who approves); with one and --wait, promotes and lists the phases; promoting the pre-promote preview back undoes it", async () => {
    const p = await appProject(env);
    const backup = await verifiedBackup(env, p.tenant);
    const preview = await changedPreview(env, p, backup);
    const oldHashes = await hashesOf(env, p.database);
    const newHashes = await hashesOf(env, preview.database_name);
    const key = await p.tenant.key(["projects:write", "projects:read", "jobs:read", "backups:read"]);
    const run = (args: string[]) => capydb(args, key, p.tenant.projectId);

    const none = await run(["previews", "promote", preview.id]);
    expect(none.status, show(none)).toBe(2);
    expect(none.stderr).toMatch(/--approval-token is required: an organization admin approves project\.promote_preview/);
    const bad = await run(["previews", "promote", preview.id, "--approval-token", "ap_nope"]);
    expect(bad.status, show(bad)).toBe(3);
    expect(bad.stderr).toMatch(/not an approval token/);

    // An empty --approval-token counts as none.
    const empty = await run(["previews", "promote", preview.id, "--approval-token", ""]);
    expect(empty.status, show(empty)).toBe(2);

    const token = await approval(env, p.tenant.projectId, p.tenant.organizationId);
    const done = await withWorker(() => run(["previews", "promote", preview.id, "--approval-token", token, "--wait", "-o", "json"]));
    expect(done.status, show(done)).toBe(0);
    const job = done.json().job;
    expect(job).toMatchObject({ type: "project.promote_preview", state: "completed", preview_database_id: preview.id });
    expect(job.last_stdout).toMatch(/safety backup \S+ requested[\s\S]*verified[\s\S]*swapped[\s\S]*done/);
    expect(await hashesAs(env, p.role, p.database)).toEqual(newHashes);
    const parkedId = /promoting preview (pvw_\w+)/.exec(job.last_stdout)![1]!;

    const undoToken = await approval(env, p.tenant.projectId, p.tenant.organizationId);
    const undo = await withWorker(() => run(["previews", "promote", parkedId, "--approval-token", undoToken, "--wait", "-o", "table"]));
    expect(undo.status, show(undo)).toBe(0);
    expect(undo.stdout).toMatch(/state:\s+completed/);
    expect(undo.stdout).toMatch(/phases:\n\s+\S+ safety backup bkp_\w+ requested/);
    expect(undo.stderr).toMatch(/To undo within 24 hours: .*capydb previews promote pvw_\w+ --approval-token/);
    expect(await hashesAs(env, p.role, p.database)).toEqual(oldHashes);
  }, 300_000);
});

describe("capydb restore --target-kind project", () => {
  it("restores a backup over a non-production project's database with an approval, and is refused (exit 5) for a production one", async () => {
    const p = await appProject(env, { environment: "non_production" });
    const backup = await verifiedBackup(env, p.tenant);
    const atBackup = await hashesOf(env, p.database);
    await env.query(p.database, "DELETE FROM orders WHERE id % 3 = 0");
    const key = await p.tenant.key(["backups:write", "backups:read", "jobs:read"]);
    const backupKey = `projects/${p.tenant.projectId}/backups/${backup.backup_id}.dump`;
    const run = (args: string[], projectKey = key, projectId = p.tenant.projectId) => capydb(args, projectKey, projectId);

    const none = await run(["restore", "--backup-key", backupKey, "--target-kind", "project"]);
    expect(none.status, show(none)).toBe(2);
    expect(none.stderr).toMatch(/--approval-token is required: .*project\.restore_overwrite/);

    const token = await approval(env, p.tenant.projectId, p.tenant.organizationId, "project.restore_overwrite");
    const done = await withWorker(() =>
      run(["restore", "--backup-key", backupKey, "--target-kind", "project", "--approval-token", token, "--wait", "-o", "json"]),
    );
    expect(done.status, show(done)).toBe(0);
    expect(done.json().job).toMatchObject({ type: "project.restore", state: "completed", preview_database_id: null });
    expect(await hashesAs(env, p.role, p.database)).toEqual(atBackup);

    const prod = await appProject(env);
    const prodKey = await prod.tenant.key(["backups:write", "backups:read", "jobs:read"]);
    const prodBackup = await verifiedBackup(env, prod.tenant);
    const refused = await run(
      [
        "restore",
        "--backup-key",
        `projects/${prod.tenant.projectId}/backups/${prodBackup.backup_id}.dump`,
        "--target-kind",
        "project",
        "--approval-token",
        await approval(env, prod.tenant.projectId, prod.tenant.organizationId, "project.restore_overwrite"),
      ],
      prodKey,
      prod.tenant.projectId,
    );
    expect(refused.status, show(refused)).toBe(5);
    expect(refused.stderr).toMatch(/production project: restoring over its database is refused/);
  }, 300_000);
});
