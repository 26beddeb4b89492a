import { serve, type ServerType } from "@hono/node-server";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import { startWorkerLoop } from "../../local/loops.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { freePort } from "../../local/wait.ts";
import { startArchivedCluster, type ArchivedCluster } from "../pg/archived-cluster.ts";
import { publishArchive } from "../pg/publish-archive.ts";
import { storedEvents } from "../support/events.ts";
import { countAndMaxId } from "../support/preview-rows.ts";

/**
 * The headline case as a customer lives it: a table gets rows for a while and is dropped at a
 * known moment; `capydb restore --restore-time <a moment before the drop> --wait` gives a preview
 * where the table is back with exactly the rows committed at or before that moment. The archive
 * is a real pg_receivewal + pg_basebackup one, published in the WAL archive's storage contract.
 */
let env: TestEnv;
let src: ArchivedCluster;
let tenant: Tenant;
let key: string;
let apiUrl: string;
let home: string;
let server: ServerType | undefined;
let worker: ReturnType<typeof startWorkerLoop> | undefined;
let commits: Date[] = [];

beforeAll(async () => {
  env = await createTestEnv();
  src = await startArchivedCluster();
  await src.query("postgres", "CREATE DATABASE shop");
  await src.query("shop", "CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL)");
  const tar = await src.baseBackup();
  for (let id = 1; id <= 15; id++) {
    await src.query("shop", "INSERT INTO orders VALUES ($1::int, $1::int * 1.5)", [id]);
    await new Promise((r) => setTimeout(r, 100));
  }
  const rows = await src.query<{ at: string }>("shop", "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))::text AS at FROM orders ORDER BY id");
  commits = rows.map((r) => new Date(Number(r.at) * 1000));
  await src.query("shop", "DROP TABLE orders"); // the accident
  tenant = await env.seedTenant({ clusterUrl: src.server.url.replace(/\/postgres$/, "/postgres?sslmode=disable"), database: "shop" });
  await publishArchive(env.deps, src, tenant.clusterId, [tar]);
  key = await tenant.key(["backups:read", "backups:write", "jobs:read", "projects:read", "projects:write", "credentials:read"]);
  const port = await freePort();
  await new Promise<void>((resolve) => (server = serve({ fetch: env.app().fetch, port, hostname: "127.0.0.1" }, () => resolve())));
  apiUrl = `http://127.0.0.1:${port}`;
  home = mkdtempSync(join(tmpdir(), "capydb-cli-"));
  worker = startWorkerLoop(env.deps, createWorkerHandler(env.deps, { pitrArchiveWaitSeconds: 2 }), { concurrency: 1, waitSeconds: 1 });
}, 180_000);
afterAll(async () => {
  await worker?.stop();
  if (server) await new Promise((r) => server!.close(r));
  if (home) rmSync(home, { recursive: true, force: true });
  await src?.stop();
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

describe("capydb restore --restore-time", () => {
  it("brings a dropped table back with exactly the rows committed at or before the time", async () => {
    const at = new Date((commits[11]!.getTime() + commits[12]!.getTime()) / 2).toISOString(); // after row 12, before row 13
    const restored = await capydb(["restore", "--restore-time", at, "--preview-name", "before-drop", "--wait", "-o", "json"]);
    expect(restored.status, show(restored)).toBe(0);
    const { job, preview, pitr } = restored.json();
    expect(job).toMatchObject({ type: "project.restore", state: "completed" });
    expect(preview).toMatchObject({ name: "before-drop", state: "ready", source_kind: "pitr", source_restore_time: at, source_backup_key: null });
    expect(pitr).toEqual({ requested_restore_time: at, restore_time: at, restore_time_clamped: false });

    const url = await capydb(["previews", "connect", preview.id, "-o", "table"]);
    expect(url.status, show(url)).toBe(0);
    expect(await countAndMaxId(url.stdout.trim(), "orders")).toEqual({ n: "12", max: 12 });
    // The webhook event says which moment came back.
    const events = await storedEvents(env.deps, { type: "restore.completed" });
    const done = events.find((e) => (e.event.data as { job_id?: string }).job_id === job.id);
    expect(done?.event.data).toMatchObject({ target_kind: "preview", preview_id: preview.id, source_kind: "pitr", restore_time: at });
  }, 120_000);

  it("restore-points create --kind pitr records the time; a malformed time is a usage error", async () => {
    const at = new Date((commits[4]!.getTime() + commits[5]!.getTime()) / 2).toISOString();
    const point = await capydb(["restore-points", "create", "--label", "before-five", "--kind", "pitr", "--pitr-time", at, "-o", "json"]);
    expect(point.status, show(point)).toBe(0);
    expect(point.json().restore_point).toMatchObject({ kind: "pitr", pitr_time: at, label: "before-five", backup_id: null });
    const bad = await capydb(["restore", "--restore-time", "yesterday-ish"]);
    expect(bad.status, show(bad)).toBe(2);
    expect(bad.stderr).toMatch(/--restore-time must be an RFC 3339 time .* or a time ago \(-15m/);
    const both = await capydb(["restore", "--restore-time", "-15m", "--backup-key", "x"]);
    expect(both.status).toBe(2);
  }, 60_000);
});
