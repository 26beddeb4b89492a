import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, sep } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/wait.ts";

/**
 * `npx capydb` as a new user types it: the machine's own npm and Node (not the Node 24 that npm
 * scripts get from the `node` devDependency), and an empty npm cache, so npx installs the project
 * into its cache as it does on a first run: the step where npm checks the project's `engines`
 * against the machine's Node, and used to print EBADENGINE on stderr.
 */
let env: TestEnv;
let tenant: Tenant;
let key: string;
let apiUrl: string;
let server: ServerType;
let npmCache: string;
let home: string;

/** PATH without the project's node_modules/.bin (and npm's helpers): the machine's own node, npm and npx. */
const systemPath = (process.env.PATH ?? "")
  .split(delimiter)
  .filter((d) => !d.endsWith(`${sep}node_modules${sep}.bin`) && !d.includes(`${sep}@npmcli${sep}run-script${sep}`))
  .join(delimiter);

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant();
  key = await tenant.key();
  const port = await freePort();
  await new Promise<void>((resolve) => (server = serve({ fetch: env.app().fetch, port, hostname: "127.0.0.1" }, () => resolve())));
  apiUrl = `http://127.0.0.1:${port}`;
  npmCache = mkdtempSync(join(tmpdir(), "capydb-npm-cache-"));
  home = mkdtempSync(join(tmpdir(), "capydb-npx-home-"));
});
afterAll(async () => {
  if (server) await new Promise((r) => server.close(r));
  for (const d of [npmCache, home]) if (d) rmSync(d, { recursive: true, force: true });
  await env?.cleanup();
});

/** `npx <args>` in the checkout, with only these variables (no npm_config_* inherited from `npm test`). */
function npx(args: string[], extra: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { PATH: systemPath, HOME: process.env.HOME, npm_config_cache: npmCache, CAPYDB_HOME: home, ...extra };
  return new Promise((resolve, reject) => {
    const child = spawn("npx", args, { env: childEnv, cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const systemNode = spawnSync("node", ["--version"], { env: { PATH: systemPath }, encoding: "utf8" }).stdout.trim();

describe(`npx under the machine's Node (${systemNode || "none found"})`, () => {
  it("capydb --help and capydb-admin --help: the help, and nothing on stderr", async () => {
    const help = await npx(["capydb", "--help"]);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: capydb /);
    expect(help.stderr).toBe("");

    const admin = await npx(["capydb-admin", "--help"]);
    expect(admin.status, admin.stderr).toBe(0);
    expect(admin.stdout).toMatch(/^Usage: capydb-admin /);
    expect(admin.stderr).toBe("");
  });

  it("capydb backups list against a real API: the backups, and nothing on stderr", async () => {
    const created = await env.app().request(`/v1/projects/${tenant.projectId}/backups`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ label: "listed through npx" }),
    });
    expect(created.status, await created.clone().text()).toBe(202);

    const list = await npx(["capydb", "backups", "list"], { CAPYDB_API_URL: apiUrl, CAPYDB_API_KEY: key, CAPYDB_PROJECT: tenant.projectId });
    expect(list.status, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).backups.map((b: { label: string }) => b.label)).toContain("listed through npx");
    expect(list.stderr).toBe("");
  });

  it("the bins run on the Node 24 of the node devDependency, whatever the machine's Node", async () => {
    // `#!/usr/bin/env node` in bin/*.mjs finds the first node on npx's PATH: node_modules/.bin/node.
    const version = await npx(["-c", "node -p process.versions.node"]);
    expect(version.stderr).toBe("");
    expect(version.stdout.trim()).toMatch(/^24\./);
  });
});
