import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey } from "../../core/auth/keys.ts";
import { freePort } from "../../local/wait.ts";

/** `capydb audit list` as a customer runs it: a child process talking HTTP to this file's API. */
let env: TestEnv;
let tenant: Tenant;
let apiUrl: string;
let home: string;
let server: ServerType;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: await env.createDatabase() });
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

function capydb(args: string[], apiKey: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CAPYDB_HOME: home,
    CAPYDB_API_URL: apiUrl,
    CAPYDB_API_KEY: apiKey,
    CAPYDB_PROJECT: tenant.projectId,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "cli/capydb.ts", ...args], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

describe("capydb audit list", () => {
  it("prints the project's events (JSON: the API's body), the organization's with --org, and pages", async () => {
    const writer = await tenant.key(["backups:write", "projects:read"]);
    for (let i = 0; i < 2; i++) {
      const res = await env.app().request(`/v1/projects/${tenant.projectId}/backups`, { method: "POST", headers: { authorization: `Bearer ${writer}` } });
      expect(res.status).toBe(202);
    }
    const orgKey = await createApiKey(env.deps, {
      organization_id: tenant.organizationId,
      name: "auditor",
      scopes: ["projects:read", "organizations:read", "api_keys:write"],
    });
    await env.app().request(`/v1/organizations/${tenant.organizationId}/api-keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${orgKey.key}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "made-by-auditor", scopes: ["projects:read"] }),
    });

    const project = await capydb(["audit", "list"], writer);
    expect(project.status, project.stderr).toBe(0);
    const events = JSON.parse(project.stdout).audit_events;
    expect(events.map((e: { action: string }) => e.action)).toEqual(["backup.requested", "backup.requested"]);
    const api = await (await env.app().request(`/v1/projects/${tenant.projectId}/audit-events`, { headers: { authorization: `Bearer ${writer}` } })).json();
    expect(JSON.parse(project.stdout)).toEqual(api);

    const org = await capydb(["audit", "list", "--org", "-o", "table"], orgKey.key);
    expect(org.status, org.stderr).toBe(0);
    expect(org.stdout).toMatch(/^CREATED\s+ACTION\s+ACTOR\s+TARGET\s+PROJECT\s+DETAILS/);
    expect(org.stdout).toMatch(new RegExp(`api_key\\.created\\s+api_key:${orgKey.record.id}\\s+api_key key_\\w+\\s+-\\s+(\\S+=\\S+ )*name=made-by-auditor`));
    expect(org.stdout.match(/backup\.requested/g)).toHaveLength(2);
    expect(org.stdout, "unset details are left out").not.toMatch(/=null/);

    const page = await capydb(["audit", "list", "--limit", "1"], writer);
    expect(JSON.parse(page.stdout).audit_events).toHaveLength(1);
    const table = await capydb(["audit", "list", "--limit", "1", "-o", "table"], writer);
    expect(table.stderr).toMatch(/More events: --cursor \S+/);

    // A project-scoped key cannot read the organization's trail: exit 3 (permission).
    const scoped = await tenant.key(["projects:read"], { projectId: tenant.projectId });
    const refused = await capydb(["audit", "list", "--org"], scoped);
    expect(refused.status, refused.stderr).toBe(3);
  });
});
