import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import { startWorkerLoop } from "../../local/loops.ts";
import { freePort } from "../../local/wait.ts";

/**
 * The `capydb` CLI as customers run it: a child process talking HTTP to the API, served on a
 * free port from this file's environment. The worker loop runs in this process for the tests
 * that wait on backups.
 */
let env: TestEnv;
let tenant: Tenant;
let key: string;
let apiUrl: string;
let home: string;
const servers: ServerType[] = [];

/** Serves `fetch` on 127.0.0.1 and answers its base URL. */
async function listen(fetch: (req: Request) => Response | Promise<Response>): Promise<string> {
  const port = await freePort();
  await new Promise<void>((resolve) => servers.push(serve({ fetch, port, hostname: "127.0.0.1" }, () => resolve())));
  return `http://127.0.0.1:${port}`;
}

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant();
  key = await tenant.key();
  apiUrl = await listen(env.app().fetch);
  // An empty CAPYDB_HOME, so a developer's own .capydb/local.json never leaks into the tests.
  home = mkdtempSync(join(tmpdir(), "capydb-cli-"));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  if (home) rmSync(home, { recursive: true, force: true });
  await env?.cleanup();
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  json(): any;
}

/**
 * Runs the CLI with only the given settings (no inherited CAPYDB_* variables). Piped by default,
 * so output is JSON; with `tty`, under util-linux `script`, which gives it a pseudo-terminal
 * (stdout and stderr then arrive together on stdout).
 */
function capydb(args: string[], settings: Record<string, string | undefined> = {}, opts: { tty?: boolean } = {}): Promise<Run> {
  const base = { CAPYDB_API_URL: apiUrl, CAPYDB_API_KEY: key, CAPYDB_PROJECT: tenant.projectId };
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, CAPYDB_HOME: home };
  for (const [k, v] of Object.entries({ ...base, ...settings })) if (v !== undefined) childEnv[k] = v;
  const argv = [process.execPath, "--import", "tsx", "cli/capydb.ts", ...args];
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const [cmd, cmdArgs] = opts.tty ? ["script", ["-qefc", argv.map(quote).join(" "), "/dev/null"]] : [argv[0]!, argv.slice(1)];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, cmdArgs, { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
}

/** The API's own answer, for comparing with what the CLI printed. */
async function api(path: string, apiKey = key): Promise<any> {
  const res = await env.app().request(path, { headers: { authorization: `Bearer ${apiKey}` } });
  const body = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body;
}

const hasScript = spawnSync("script", ["--version"]).status === 0;
const show = (r: Run) => `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

describe("capydb: settings, errors and exit codes", () => {
  it("works with no flags against the local stack's .capydb/local.json", async () => {
    const dir = mkdtempSync(join(tmpdir(), "capydb-home-"));
    try {
      const aws = { endpoint: "x", region: "x", table: "x", queue_url: "x", dlq_url: "x", bucket: "x" };
      const local = { api_url: apiUrl, api_key: key, organization_id: tenant.organizationId, project_id: tenant.projectId, aws, postgres: { url: "x" } };
      writeFileSync(join(dir, "local.json"), JSON.stringify(local));
      const none = { CAPYDB_HOME: dir, CAPYDB_API_URL: undefined, CAPYDB_API_KEY: undefined, CAPYDB_PROJECT: undefined };

      const res = await capydb(["backups", "list"], none);
      expect(res.status, show(res)).toBe(0);
      expect(res.json()).toEqual(await api(`/v1/projects/${tenant.projectId}/backups`));

      // The environment wins over local.json, and a flag over the environment.
      const envProject = await capydb(["backups", "list"], { ...none, CAPYDB_PROJECT: "prj_01jzzzzzzzzzzzzzzzzzzzzzzz" });
      expect(envProject.status, show(envProject)).toBe(4);
      const flagProject = await capydb(["backups", "list", "--project", tenant.projectId], { ...none, CAPYDB_PROJECT: "prj_01jzzzzzzzzzzzzzzzzzzzzzzz" });
      expect(flagProject.status, show(flagProject)).toBe(0);

      // local.json's key belongs to local.json's URL: it is not sent to another server.
      const otherUrl = apiUrl.replace("127.0.0.1", "localhost");
      const other = await capydb(["backups", "list"], { ...none, CAPYDB_API_URL: otherUrl });
      expect(other.status, show(other)).toBe(3);
      expect(other.stderr).toContain("no API key: run `capydb login`, or pass --api-key or set CAPYDB_API_KEY");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("exits 3 for a bad key, a missing key and a key without the scope, saying what to do", async () => {
    const bad = await capydb(["backups", "list"], { CAPYDB_API_KEY: "capy_live_" + "x".repeat(40) });
    expect(bad.status, show(bad)).toBe(3);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toMatch(/HTTP 401/);
    expect(bad.stderr).toMatch(/CAPYDB_API_KEY/);

    const missing = await capydb(["backups", "list"], { CAPYDB_API_KEY: undefined });
    expect(missing.status, show(missing)).toBe(3);
    expect(missing.stderr.trim()).toBe("capydb: no API key: run `capydb login`, or pass --api-key or set CAPYDB_API_KEY");

    const readOnly = await tenant.key(["backups:read", "jobs:read"]);
    const forbidden = await capydb(["backups", "create", "--api-key", readOnly]);
    expect(forbidden.status, show(forbidden)).toBe(3);
    expect(forbidden.stderr).toMatch(/backups:write/);
  });

  it("exits 4 for an unknown project or job, naming where the project id came from", async () => {
    const project = await capydb(["backups", "list", "--project", "prj_01jzzzzzzzzzzzzzzzzzzzzzzz"]);
    expect(project.status, show(project)).toBe(4);
    expect(project.stderr).toMatch(/project prj_01jzzzzzzzzzzzzzzzzzzzzzzz not found/);
    expect(project.stderr).toMatch(/--project/);

    // Another organization's project is just as unknown.
    const stranger = await env.seedTenant({ database: tenant.database });
    const theirs = await capydb(["jobs", "list"], { CAPYDB_PROJECT: stranger.projectId });
    expect(theirs.status, show(theirs)).toBe(4);

    const job = await capydb(["jobs", "get", "job_01jzzzzzzzzzzzzzzzzzzzzzzz"]);
    expect(job.status, show(job)).toBe(4);
  });

  it("exits 2 for bad usage and invalid values before calling the API", async () => {
    const usages = [
      ["backups", "schedule", "set", "--hour", "24", "--minute", "0"],
      ["backups", "schedule", "set", "--hour", "2"],
      ["backups", "create", "--retention-days", "0"],
      ["backups", "create", "--wait", "--wait-timeout", "5"],
      ["jobs", "list", "--limit", "101"],
      ["backups", "frobnicate"],
      ["-o", "yaml", "backups", "list"],
    ];
    const runs = await Promise.all(usages.map((args) => capydb(args)));
    for (const [i, res] of runs.entries()) expect(res.status, `${usages[i]!.join(" ")}: ${show(res)}`).toBe(2);
    expect(runs[3]!.stderr).toContain('invalid duration "5"');
    const noProject = await capydb(["backups", "list"], { CAPYDB_PROJECT: undefined });
    expect(noProject.status).toBe(2);
    expect(noProject.stderr).toContain("no project: pass --project or set CAPYDB_PROJECT");
    expect(await api(`/v1/projects/${tenant.projectId}/jobs`)).toEqual({ jobs: [] });
  });

  it("retries a GET through 503s, but never replays a POST", async () => {
    let gets = 0;
    let posts = 0;
    const app = env.app();
    const flakyUrl = await listen((req) => {
      if (req.method === "POST") posts++;
      else gets++;
      if (req.method === "POST" || gets <= 2) {
        return Response.json({ error: "a dependency is unavailable, try again shortly" }, { status: 503, headers: { "retry-after": "0" } });
      }
      return app.fetch(req);
    });
    const list = await capydb(["jobs", "list"], { CAPYDB_API_URL: flakyUrl });
    expect(list.status, show(list)).toBe(0);
    expect(gets).toBe(3);
    expect(list.json()).toEqual({ jobs: [] });

    const create = await capydb(["backups", "create"], { CAPYDB_API_URL: flakyUrl });
    expect(create.status, show(create)).toBe(1);
    expect(posts).toBe(1);
    expect(create.stderr).toMatch(/HTTP 503/);
  });
});

describe("capydb backups schedule", () => {
  it("set then get round-trips, disable keeps the time, retention and label, and set keeps what it is not given", async () => {
    const none = await capydb(["backups", "schedule", "get"]);
    expect(none.status, show(none)).toBe(0);
    expect(none.json()).toEqual({ scheduled_backups: [] });

    const nothing = await capydb(["backups", "schedule", "disable"]);
    expect(nothing.status, show(nothing)).toBe(4);
    expect(nothing.stderr).toMatch(/has no backup schedule.*nothing to disable/);

    const set = await capydb(["backups", "schedule", "set", "--hour", "2", "--minute", "15", "--retention-days", "30", "--label", "nightly"]);
    expect(set.status, show(set)).toBe(0);
    expect(set.json().scheduled_backup).toMatchObject({ cron_hour: 2, cron_minute: 15, retention_days: 30, label: "nightly", is_active: true });

    const get = await capydb(["backups", "schedule", "get"]);
    expect(get.status, show(get)).toBe(0);
    expect(get.json()).toEqual(await api(`/v1/projects/${tenant.projectId}/scheduled-backups`));
    expect(get.json().scheduled_backups).toEqual([set.json().scheduled_backup]);

    const disable = await capydb(["backups", "schedule", "disable"]);
    expect(disable.status, show(disable)).toBe(0);
    expect(disable.json().scheduled_backup).toMatchObject({ cron_hour: 2, cron_minute: 15, retention_days: 30, label: "nightly", is_active: false });
    const stored = (await api(`/v1/projects/${tenant.projectId}/scheduled-backups`)).scheduled_backups[0];
    expect(stored).toMatchObject({ cron_hour: 2, cron_minute: 15, is_active: false });

    const again = await capydb(["backups", "schedule", "set", "--hour", "3", "--minute", "0"]);
    expect(again.status, show(again)).toBe(0);
    expect(again.json().scheduled_backup).toMatchObject({ cron_hour: 3, cron_minute: 0, retention_days: 30, label: "nightly", is_active: true });

    const table = await capydb(["backups", "schedule", "get", "-o", "table"]);
    expect(table.status, show(table)).toBe(0);
    expect(table.stdout).toMatch(/daily at 03:00 UTC/);
    expect(table.stdout).toMatch(/30 days/);
  });
});

describe("capydb --wait (worker running)", () => {
  let worker: ReturnType<typeof startWorkerLoop>;
  beforeAll(() => {
    worker = startWorkerLoop(env.deps, createWorkerHandler(env.deps), { concurrency: 2, waitSeconds: 1 });
  });
  afterAll(async () => worker?.stop());

  it("backups create --wait -o json exits 0 and prints the verified backup, exactly as the API lists it", async () => {
    const res = await capydb(["backups", "create", "--label", "pre-migration", "--wait", "--require-verified", "-o", "json"]);
    expect(res.status, show(res)).toBe(0);
    expect(res.stderr).toBe(""); // piped: nothing but the result
    const backup = res.json();
    expect(backup).toMatchObject({ label: "pre-migration", state: "completed", verification_state: "verified", project_id: tenant.projectId });
    expect(backup.size_bytes).toBeGreaterThan(0);
    const listed = await api(`/v1/projects/${tenant.projectId}/backups`);
    expect(listed.backups.find((b: { id: string }) => b.id === backup.id)).toEqual(backup);

    // The other outputs are the API's bodies, unchanged.
    const list = await capydb(["backups", "list"]);
    expect(list.json()).toEqual(await api(`/v1/projects/${tenant.projectId}/backups`));
    const jobs = await capydb(["jobs", "list", "--limit", "5"]);
    expect(jobs.status, show(jobs)).toBe(0);
    expect(jobs.json()).toEqual(await api(`/v1/projects/${tenant.projectId}/jobs?limit=5`));
    const jobId = jobs.json().jobs[0].id;
    const job = await capydb(["jobs", "get", jobId, "--wait"]);
    expect(job.status, show(job)).toBe(0);
    expect(job.json()).toEqual(await api(`/v1/jobs/${jobId}`));
    expect(job.json().job.state).toBe("completed");

    const table = await capydb(["backups", "list", "-o", "table"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+LABEL\s+STATE\s+VERIFICATION\s+SIZE\s+CREATED$/);
    expect(table.stdout).toContain(backup.id);
  });

  it.runIf(hasScript)("on a terminal: shows progress, then the result as a table", async () => {
    const res = await capydb(["backups", "create", "--wait"], {}, { tty: true });
    expect(res.status, show(res)).toBe(0);
    expect(res.stdout).toMatch(/job job_\w+: (requested|queued|dumping|verifying)/);
    expect(res.stdout).toMatch(/✓ backup bkp_\w+ completed and verified · [\d.]+ (B|KiB|MiB)/);
    expect(res.stdout).toMatch(/Verification:\s+verified/);
  });

  it("backups create without --wait prints the API's job and returns at once", async () => {
    const res = await capydb(["backups", "create", "--retention-days", "3"]);
    expect(res.status, show(res)).toBe(0);
    const { job } = res.json();
    expect(job).toMatchObject({ type: "project.backup", project_id: tenant.projectId });
    const waited = await capydb(["jobs", "get", job.id, "--wait", "--wait-timeout", "2m"]);
    expect(waited.status, show(waited)).toBe(0);
  });

  it("--wait-timeout 1s on a job that cannot finish in time exits 6 and says how to follow it", async () => {
    // A cluster that refuses connections: the job fails transiently and retries after 30 s.
    const down = await env.seedTenant({ clusterUrl: `postgres://postgres:x@127.0.0.1:${await freePort()}/postgres` });
    const started = Date.now();
    const res = await capydb(["backups", "create", "--wait", "--wait-timeout", "1s"], { CAPYDB_PROJECT: down.projectId, CAPYDB_API_KEY: await down.key() });
    expect(res.status, show(res)).toBe(6);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(res.stdout).toBe("");
    expect(res.stderr).toMatch(/timed out after 1s waiting for job (job_\w+).*capydb jobs get job_\w+ --wait/);
  });

  it("a backup that fails exits 1 with the job's error (--require-verified)", async () => {
    const missing = await env.seedTenant({ database: "no_such_database_here" });
    const res = await capydb(["backups", "create", "--require-verified", "--wait-timeout", "2m"], {
      CAPYDB_PROJECT: missing.projectId,
      CAPYDB_API_KEY: await missing.key(),
    });
    expect(res.status, show(res)).toBe(1);
    expect(res.json()).toMatchObject({ state: "failed", verification_state: "failed" });
    expect(res.stderr).toMatch(/backup failed: The database "no_such_database_here" does not exist/);
  });
});

describe("capydb whoami", () => {
  it("prints the API's principal for the key", async () => {
    const res = await capydb(["whoami"]);
    expect(res.status, show(res)).toBe(0);
    expect(res.json()).toEqual(await api("/v1/me"));
    expect(res.json().principal).toMatchObject({ organization_id: tenant.organizationId, project_id: null });
    const table = await capydb(["whoami", "-o", "table"]);
    expect(table.stdout).toMatch(/Organization:\s+\S+ \(org_\w+\)/);
  });
});
