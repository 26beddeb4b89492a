import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import { startWorkerLoop } from "../../local/loops.ts";
import { freePort } from "../../local/wait.ts";

/** `capydb projects|restore|previews|restore-points` as customers run them: a child process over HTTP. */
let env: TestEnv;
let tenant: Tenant;
let key: string;
let apiUrl: string;
let home: string;
let server: ServerType | undefined;
let worker: ReturnType<typeof startWorkerLoop> | undefined;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant();
  key = await tenant.key(["backups:read", "backups:write", "jobs:read", "projects:read", "projects:write", "credentials:read"]);
  const port = await freePort();
  await new Promise<void>((resolve) => (server = serve({ fetch: env.app().fetch, port, hostname: "127.0.0.1" }, () => resolve())));
  apiUrl = `http://127.0.0.1:${port}`;
  home = mkdtempSync(join(tmpdir(), "capydb-cli-"));
  worker = startWorkerLoop(env.deps, createWorkerHandler(env.deps), { concurrency: 2, waitSeconds: 1 });
});
afterAll(async () => {
  await worker?.stop();
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
function capydb(args: string[]): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CAPYDB_HOME: home,
    CAPYDB_API_URL: apiUrl,
    CAPYDB_API_KEY: key,
    CAPYDB_PROJECT: tenant.projectId,
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

describe("capydb restore and previews", () => {
  it("projects list/get; backup -> restore --wait -> connect; restore points; previews delete --wait", async () => {
    const list = await capydb(["projects", "list"]);
    expect(list.status, show(list)).toBe(0);
    expect(list.json().projects.map((p: { id: string }) => p.id)).toEqual([tenant.projectId]);
    const get = await capydb(["projects", "get"]);
    expect(get.status, show(get)).toBe(0);
    expect(get.json().project).toMatchObject({ id: tenant.projectId, database_name: tenant.database });

    const backup = await capydb(["backups", "create", "--wait", "--require-verified", "-o", "json"]);
    expect(backup.status, show(backup)).toBe(0);
    const backupKey = backup.json().backup_key as string;

    const usage = await capydb(["restore", "--backup-key", backupKey, "--restore-point", "rpt_x"]);
    expect(usage.status, show(usage)).toBe(2);
    expect(usage.stderr).toMatch(/exactly one of --backup-key, --restore-point or --restore-time/);
    const pitr = await capydb(["restore", "--backup-key", backupKey, "--target-kind", "preview"]);
    expect(pitr.status, show(pitr)).toBe(2); // 400: preview_id is required
    expect(pitr.stderr).toMatch(/preview_id/);

    const restored = await capydb(["restore", "--backup-key", backupKey, "--preview-name", "cli", "--ttl-hours", "2", "--wait", "-o", "json"]);
    expect(restored.status, show(restored)).toBe(0);
    const { job, preview } = restored.json();
    expect(job).toMatchObject({ type: "project.restore", state: "completed" });
    expect(preview).toMatchObject({ name: "cli", state: "ready" });

    const url = await capydb(["previews", "connect", preview.id, "-o", "table"]);
    expect(url.status, show(url)).toBe(0);
    const client = new pg.Client({ connectionString: url.stdout.trim() });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: string }>("SELECT count(*) AS n FROM customers");
      expect(Number(rows[0]!.n)).toBe(20000);
    } finally {
      await client.end();
    }
    const listed = await capydb(["previews", "list", "-o", "table"]);
    expect(listed.status, show(listed)).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`${preview.id}\\s+cli\\s+clone\\s+ready`));

    const point = await capydb(["restore-points", "create", "--label", "keep", "--backup-key", backupKey]);
    expect(point.status, show(point)).toBe(0);
    const pointId = point.json().restore_point.id as string;
    const points = await capydb(["restore-points", "list"]);
    expect(points.json()).toMatchObject({ pitr_window_days: 0, restore_points: [{ id: pointId, state: "active" }] });
    const gone = await capydb(["restore-points", "delete", pointId]);
    expect(gone.json().restore_point.state).toBe("deleted");

    const missing = await capydb(["previews", "get", "pvw_01m8bbd943485gy3g6c722w2d4"]);
    expect(missing.status, show(missing)).toBe(4);
    const deleted = await capydb(["previews", "delete", preview.id, "--wait", "-o", "json"]);
    expect(deleted.status, show(deleted)).toBe(0);
    expect(deleted.json()).toMatchObject({ job: { type: "instance.destroy", state: "completed" }, preview: { state: "deleted" } });
  }, 240_000);
});
