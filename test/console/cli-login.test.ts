import { serve, type ServerType } from "@hono/node-server";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/wait.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { launchBrowser, type Browser } from "./browser.ts";

/**
 * `capydb login` as a person does it: the CLI (a child process) prints the console link, the person
 * signs in to the console in Debian's Chromium, sees the device and the scopes, and approves or
 * denies; the CLI stores the key it gets 0600 in its config directory. Real API, real store.
 */
let env: TestEnv;
let tenant: Tenant;
let key: string;
let base: string;
let server: ServerType;
let browser: Browser;
let config: string;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "cli_login_browser" });
  key = await tenant.key(["backups:read", "jobs:read", "projects:read"]);
  const port = await freePort();
  await new Promise<void>((resolve) => {
    server = serve({ fetch: env.app().fetch, port, hostname: "127.0.0.1" }, () => resolve());
  });
  base = `http://127.0.0.1:${port}`;
  browser = await launchBrowser();
  config = mkdtempSync(join(tmpdir(), "capydb-login-"));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
  if (config) rmSync(config, { recursive: true, force: true });
  await env?.cleanup();
});

/** Starts the CLI; resolves its link as soon as it prints it, and its whole run at the end. */
function capydb(args: string[], extra: Record<string, string> = {}) {
  const child = spawn(process.execPath, ["--import", "tsx", "cli/capydb.ts", ...args], {
    env: { PATH: process.env.PATH, HOME: config, XDG_CONFIG_HOME: join(config, "xdg"), CAPYDB_API_URL: base, ...extra },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let onLink: (url: string) => void = () => {};
  const link = new Promise<string>((r) => (onLink = r));
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    const m = /(http:\/\/\S+\/console\/cli-login\/cli_\w+)/.exec(stderr);
    if (m) onLink(m[1]!);
  });
  const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (status) => resolve({ status, stdout, stderr })),
  );
  return { link, done };
}

async function approveInConsole(page: Page, url: string, button: "Approve" | "Deny") {
  await page.goto(url);
  // Not signed in yet: the console asks, then comes back to the approval page.
  await page.waitForURL(/\/console\?next=/);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(url);
  await page.locator("#cli-login-device", { hasText: "test laptop" }).waitFor();
  expect(await page.locator("#cli-login-requested").textContent()).toContain("backups:write");
  expect(await page.locator("#cli-login-granted").textContent()).toBe("backups:read, jobs:read, projects:read");
  await page.getByRole("button", { name: button }).click();
  await page.locator("#cli-login-status", { hasText: button === "Approve" ? "Approved" : "Denied" }).waitFor();
}

describe("capydb login", () => {
  it("approved in the console: the CLI keeps the new key 0600 and uses it; CAPYDB_API_KEY still wins; logout forgets it", async () => {
    const page = await browser.newPage();
    const run = capydb(["login", "--device-name", "test laptop"]);
    await approveInConsole(page, await run.link, "Approve");
    const done = await run.done;
    expect(done.status, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/Signed in\. The key is kept in .*credentials\.json/);

    const path = join(config, "xdg", "capydb", "credentials.json");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(path, "utf8"));
    expect(stored).toMatchObject({ api_url: base, api_key: expect.stringMatching(/^capy_live_/), device_name: "test laptop" });

    const whoami = await capydb(["whoami", "-o", "json"]).done;
    expect(whoami.status, whoami.stderr).toBe(0);
    expect(JSON.parse(whoami.stdout).principal).toMatchObject({
      organization_id: tenant.organizationId,
      scopes: ["backups:read", "jobs:read", "projects:read"],
    });
    const wins = await capydb(["whoami", "-o", "json"], { CAPYDB_API_KEY: "capy_live_notAKeyThatExists00000000000000000" }).done;
    expect(wins.status).not.toBe(0);

    const out = await capydb(["logout"]).done;
    expect(out.status, out.stderr).toBe(0);
    expect(() => statSync(path)).toThrow();
    const after = await capydb(["whoami"]).done;
    expect(after.status).not.toBe(0);
    expect(after.stderr).toMatch(/capydb login/);
    await page.close();
  }, 180_000);

  it("denied in the console: the CLI says so and stores nothing", async () => {
    const page = await browser.newPage();
    const run = capydb(["login", "--device-name", "test laptop"]);
    await approveInConsole(page, await run.link, "Deny");
    const done = await run.done;
    expect(done.status).not.toBe(0);
    expect(done.stderr).toMatch(/denied/);
    expect(() => statSync(join(config, "xdg", "capydb", "credentials.json"))).toThrow();
    await page.close();
  }, 180_000);
});
