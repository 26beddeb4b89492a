import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allScopes } from "../../core/auth/scopes.ts";
import { createApiKey } from "../../core/auth/keys.ts";
import { freePort } from "../../local/wait.ts";
import { fakeBackup } from "../support/fake-backup.ts";

/**
 * Both CLIs print a document well over a pipe's 64 KiB into a reader that waits a second before
 * reading (`| (sleep 1; cat)`): the reader must get every byte, and the pipeline the CLI's status.
 * Before, `process.exit` ended the CLI with the rest of the output still queued in Node.
 */
let env: TestEnv;
let tenant: Tenant;
let key: string;
let server: ServerType;
let apiUrl: string;
let home: string;
beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant();
  key = await tenant.key();
  const port = await freePort();
  await new Promise<void>((r) => (server = serve({ fetch: env.app().fetch, port, hostname: "127.0.0.1" }, () => r())));
  apiUrl = `http://127.0.0.1:${port}`;
  home = mkdtempSync(join(tmpdir(), "capydb-pipe-"));
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  if (home) rmSync(home, { recursive: true, force: true });
  await env?.cleanup();
});

/** Runs `script` in bash with pipefail: the status is the CLI's, the stdout what the slow reader got. */
function pipeline(script: string, childEnv: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", `set -o pipefail; ${script}`], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const cli = (file: string, args: string) => `"${process.execPath}" --import tsx ${file} ${args}`;
const slowReader = "(sleep 1; cat)";

describe("output through a pipe with a slow reader", () => {
  it("capydb backups list -o json: every byte arrives", async () => {
    // 200 backups with 200-character labels: a list of about 150 KiB.
    for (let i = 0; i < 200; i += 25) {
      await Promise.all(
        Array.from({ length: 25 }, (_, j) => fakeBackup(env, tenant.projectId, { label: `b${String(i + j).padStart(3, "0")}`.padEnd(200, "x") })),
      );
    }
    const childEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      CAPYDB_HOME: home,
      CAPYDB_API_URL: apiUrl,
      CAPYDB_API_KEY: key,
      CAPYDB_PROJECT: tenant.projectId,
    };

    const res = await pipeline(`${cli("cli/capydb.ts", "backups list --limit 1000 -o json")} | ${slowReader}`, childEnv);
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout.length).toBeGreaterThan(100_000);
    expect(JSON.parse(res.stdout).backups).toHaveLength(200);
  });

  it("capydb-admin key list: every byte arrives", async () => {
    // 300 keys with 100-character names: about 150 KiB of JSON.
    for (let i = 0; i < 300; i += 25) {
      await Promise.all(
        Array.from({ length: 25 }, (_, j) =>
          createApiKey(env.deps, {
            organization_id: tenant.organizationId,
            project_id: null,
            scopes: [...allScopes],
            name: `k${String(i + j).padStart(3, "0")}`.padEnd(100, "x"),
            expires_at: null,
          }),
        ),
      );
    }
    const res = await pipeline(`${cli("cli/admin.ts", `key list --org ${tenant.organizationId}`)} | ${slowReader}`, { ...process.env, ...env.serviceEnv() });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout.length).toBeGreaterThan(100_000);
    expect(JSON.parse(res.stdout).length).toBeGreaterThanOrEqual(300);
  });
});
