import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/wait.ts";
import { fakeArchive } from "../support/fake-archive.ts";

/**
 * `capydb pitr` as a customer runs it: a child process talking HTTP to this file's API, whose
 * clock stands 31 minutes after the archive's first base backup (test/support/fake-archive.ts:
 * window [t0+1m, t0+10m] and [t0+20m, t0+30m], a gap between).
 */
let env: TestEnv;
let tenant: Tenant;
let bare: Tenant;
let apiUrl: string;
let home: string;
let server: ServerType;
const t0 = Date.parse("2026-12-06T00:00:00Z");

beforeAll(async () => {
  env = await createTestEnv({ now: () => new Date(t0 + 31 * 60_000) });
  tenant = await env.seedTenant();
  bare = await env.seedTenant();
  await fakeArchive(env, tenant.clusterId, t0);
  const port = await freePort();
  await new Promise<void>((resolve) => (server = serve({ fetch: env.app().fetch, port, hostname: "127.0.0.1" }, () => resolve())));
  apiUrl = `http://127.0.0.1:${port}`;
  home = mkdtempSync(join(tmpdir(), "capydb-cli-"));
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  if (home) rmSync(home, { recursive: true, force: true });
  await env?.cleanup();
});

function capydb(args: string[], apiKey: string, project: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, CAPYDB_HOME: home, CAPYDB_API_URL: apiUrl, CAPYDB_API_KEY: apiKey };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "cli/capydb.ts", ...args, "--project", project], {
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

describe("capydb pitr", () => {
  it("prints the API's body as JSON, and with -o table the window, lag, base backups and the gap", async () => {
    const key = await tenant.key(["backups:read"]);
    const json = await capydb(["pitr"], key, tenant.projectId);
    expect(json.status, json.stderr).toBe(0);
    const api = await (await env.app().request(`/v1/projects/${tenant.projectId}/pitr`, { headers: { authorization: `Bearer ${key}` } })).json();
    expect(JSON.parse(json.stdout)).toEqual(api);
    expect(JSON.parse(json.stdout).pitr).toMatchObject({ available: true, latest_restore_time: "2026-12-06T00:30:00Z", lag_seconds: 60 });

    const table = await capydb(["pitr", "-o", "table"], key, tenant.projectId);
    expect(table.status, table.stderr).toBe(0);
    const out = table.stdout;
    expect(out).toMatch(/^Available:\s+yes$/m);
    expect(out).toMatch(/^Window:\s+7 days$/m);
    expect(out).toMatch(/^Earliest restore time:\s+2026-12-06 00:01:00Z$/m);
    expect(out).toMatch(/^Latest restore time:\s+2026-12-06 00:30:00Z$/m);
    expect(out).toMatch(/^Lag:\s+1m00s$/m);
    expect(out).toMatch(/^Last drill:\s+-$/m);
    expect(out).toMatch(/^BASE BACKUP\s+STARTED\s+FINISHED\s+SIZE\s+VERIFIED$/m);
    const ids = (api as { pitr: { base_backups: { id: string }[] } }).pitr.base_backups.map((b) => b.id);
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(out).toMatch(new RegExp(`^${id}\\s+2026-12-06 00:\\d\\d:00Z\\s+2026-12-06 00:\\d\\d:00Z\\s+1000 B\\s+2026-12-06`, "m"));
    expect(out).toMatch(/^GAP FROM\s+GAP TO$/m);
    expect(out).toMatch(/^2026-12-06 00:10:00Z\s+2026-12-06 00:20:00Z$/m);
    expect(table.stderr).toMatch(/capydb restore --restore-time/);
  });

  it("a project whose cluster has no archive: unavailable, said so, exit 0", async () => {
    const res = await capydb(["pitr", "-o", "table"], await bare.key(["backups:read"]), bare.projectId);
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^Available:\s+no$/m);
    expect(res.stdout).toMatch(/^Window:\s+- \(no WAL archive\)$/m);
    expect(res.stdout).toMatch(/^Latest restore time:\s+-$/m);
    expect(res.stdout).not.toMatch(/BASE BACKUP|GAP FROM/);
    expect(res.stderr).toMatch(/no WAL archive/);
  });

  it("exit codes: 3 without backups:read, 4 for another organization's project", async () => {
    const noScope = await capydb(["pitr"], await tenant.key(["jobs:read"]), tenant.projectId);
    expect(noScope.status, noScope.stderr).toBe(3);
    const other = await capydb(["pitr"], await bare.key(["backups:read"]), tenant.projectId);
    expect(other.status, other.stderr).toBe(4);
  });
});
