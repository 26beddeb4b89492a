import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import pg from "pg";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findApiKey, revokeApiKey } from "../../core/auth/keys.ts";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import { startWorkerLoop } from "../../local/loops.ts";
import { freePort } from "../../local/wait.ts";
import { startFakeClerk } from "../support/clerk.ts";
import { launchBrowser, type Browser } from "./browser.ts";

/**
 * The console as a person uses it: Debian's Chromium (headless) against the real API served over
 * HTTP, on this file's DynamoDB table, queue, bucket and a real demo database, with the real
 * worker (started by the test when it wants the backup to move, so the pending state is seen for
 * certain). Screenshots of the main pages go to test-artifacts/console/.
 */
let env: TestEnv;
let tenant: Tenant;
let key: string;
let base: string;
let server: ServerType;
let browser: Browser;
let worker: ReturnType<typeof startWorkerLoop> | undefined;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant();
  key = await tenant.key();
  const port = await freePort();
  await new Promise<void>((resolve) => {
    server = serve({ fetch: env.app().fetch, port, hostname: "127.0.0.1" }, () => resolve());
  });
  base = `http://127.0.0.1:${port}`;
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await new Promise((r) => server?.close(r));
  await env?.cleanup();
});

/** What the API says, for comparing with what the page shows. */
async function api(path: string, init: RequestInit = {}): Promise<any> {
  const res = await fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...init.headers } });
  const body = await res.json();
  expect(res.ok, JSON.stringify(body)).toBe(true);
  return body;
}

async function signIn(page: Page, credential: string, path = "/console") {
  await page.goto(`${base}${path}`);
  await page.waitForURL(/\/console(\?|$)/);
  await page.getByLabel("API key").fill(credential);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** The id of the element that has the keyboard focus (the page's code, as a string: this file has no DOM types). */
const focusedId = (page: Page) => page.evaluate<string | undefined>("document.activeElement?.id");
const text = async (page: Page, selector: string) => ((await page.locator(selector).textContent()) ?? "").trim();

describe("console in Chromium", () => {
  it("a wrong key shows a clear message and keeps nothing", async () => {
    const page = await browser.newPage();
    await signIn(page, "capy_live_thisKeyDoesNotExist0000000000000000");
    const error = page.locator("#sign-in-error:visible");
    await error.waitFor();
    expect(await error.textContent()).toMatch(
      /^This key was not accepted: .+\. Check that you copied all of it, and that it has not been revoked or expired\.$/,
    );
    expect(page.url()).toBe(`${base}/console`);
    expect(await page.evaluate(() => ({ ...sessionStorage }))).toEqual({});
    // The field keeps focus, so the user can paste again at once.
    expect(await focusedId(page)).toBe("api-key");

    await page.getByLabel("API key").fill("not-a-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#sign-in-error", { hasText: "That is not a CapyDB API key: keys start with capy_live_." }).waitFor();
    await browser.screenshot(page, "sign-in-wrong-key");
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("signs in with the keyboard, backs up now and shows the row going from pending to verified live", async () => {
    const page = await browser.newPage();
    // A deep link without a key goes to sign-in, and back to the page afterwards.
    await page.goto(`${base}/console/projects/${tenant.projectId}`);
    await page.waitForURL(`${base}/console?next=${encodeURIComponent(`/console/projects/${tenant.projectId}`)}`);
    await browser.screenshot(page, "sign-in");
    // Keyboard only: skip link, brand link, then the key field; Enter submits.
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    expect(await focusedId(page)).toBe("api-key");
    await page.keyboard.type(key);
    await page.keyboard.press("Enter");
    await page.waitForURL(`${base}/console/projects/${tenant.projectId}`);
    // The key is in this tab's session storage, nowhere else.
    expect(await page.evaluate(() => sessionStorage.getItem("capydb.console.credential"))).toBe(key);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(await browser.context.cookies()).toEqual([]);
    expect(page.url()).not.toContain(key);

    await page.locator("#backups td", { hasText: "No backups yet" }).waitFor();
    await page.getByLabel("Label (optional)").fill("before migration");
    await page.getByRole("button", { name: "Back up now" }).click();

    // No worker yet: the job is queued and the new row says pending.
    const row = page.locator("#backups tbody tr", { hasText: "before migration" });
    await row.locator('[data-col="verification"] [data-state="pending"]').waitFor();
    expect(await row.locator('[data-col="state"] .badge').textContent()).toBe("pending");
    await page.locator("#backup-progress", { hasText: "queued" }).waitFor();
    const [backup] = (await api(`/v1/projects/${tenant.projectId}/backups`)).backups;
    expect(backup).toMatchObject({ label: "before migration", state: "pending" });
    expect(await row.getAttribute("data-id")).toBe(backup.id);
    await browser.screenshot(page, "backups-pending");

    // The worker starts; the same row (no reload) goes to completed and verified.
    worker = startWorkerLoop(env.deps, createWorkerHandler(env.deps));
    await row.locator('[data-col="verification"] [data-state="verified"]').waitFor({ timeout: 60_000 });
    expect(await row.locator('[data-col="state"] .badge').textContent()).toBe("completed");
    await page.locator("#backup-progress", { hasText: "completed in" }).waitFor();
    const after = (await api(`/v1/projects/${tenant.projectId}/backups`)).backups[0];
    expect(after).toMatchObject({ id: backup.id, state: "completed", verification_state: "verified" });
    expect(await text(page, `#backups tr[data-id="${backup.id}"] [data-col="size"]`)).toMatch(/^\d+(\.\d)? (KiB|MiB)$/);
    await page.locator("#schedule-summary", { hasText: "No schedule" }).waitFor();
    await browser.screenshot(page, "backups");

    // Download: the browser fetches the signed URL straight from S3 and saves the dump.
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      row.getByRole("button", { name: `Download backup before migration (${backup.id})` }).click(),
    ]);
    const saved = readFileSync((await download.path())!);
    const signed = (await api(`/v1/projects/${tenant.projectId}/backups/${backup.id}/download`)).download;
    expect(createHash("sha256").update(saved).digest("hex")).toBe(signed.sha256);
    expect(saved.length).toBe(signed.size_bytes);
    expect(saved.subarray(0, 5).toString()).toBe("PGDMP");
    await page.locator("#backup-action-status", { hasText: `Its SHA-256 is ${signed.sha256}.` }).waitFor();
    // The signed URL is not left in the page.
    expect(await page.content()).not.toContain("X-Amz-Signature");

    // Its job: progress finished, the tools' output shown.
    await page.getByRole("navigation", { name: "Project" }).getByRole("link", { name: "Jobs" }).click();
    await page.waitForURL(`${base}/console/projects/${tenant.projectId}/jobs`);
    const jobRow = page.locator("#jobs tbody tr").first();
    await jobRow.locator('[data-state="completed"]').waitFor();
    expect(await jobRow.locator('[data-col="type"]').textContent()).toBe("project.backup");
    await browser.screenshot(page, "jobs");
    await jobRow.getByRole("link").click();
    await page.locator("#job-steps li.done", { hasText: "Completed" }).waitFor();
    expect(await text(page, "#job-status")).toMatch(/^This project\.backup job is completed in \d+ s\.$/);
    expect(await page.locator("#job-details").textContent()).toContain(`database:${tenant.clusterId}/${tenant.database}`);
    await browser.screenshot(page, "job");
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("changes the schedule, then pauses it from the keyboard", async () => {
    const page = await browser.newPage();
    await signIn(page, key, `/console/projects/${tenant.projectId}/schedule`);
    await page.waitForURL(`${base}/console/projects/${tenant.projectId}/schedule`);
    await page.locator("#schedule-view dd", { hasText: "No schedule" }).waitFor();

    // A value out of range is refused on the page, naming the field.
    await page.getByLabel("Hour (0-23)").fill("24");
    await page.getByRole("button", { name: "Save schedule" }).click();
    await page.locator("#schedule-error", { hasText: "The hour must be a whole number from 0 to 23." }).waitFor();
    expect((await api(`/v1/projects/${tenant.projectId}/scheduled-backups`)).scheduled_backups).toEqual([]);

    await page.getByLabel("Hour (0-23)").fill("3");
    await page.getByLabel("Minute (0-59)").fill("30");
    await page.getByLabel("Keep each backup for (days, 1-365)").fill("30");
    await page.getByLabel("Label of scheduled backups").fill("nightly");
    await page.getByRole("button", { name: "Save schedule" }).click();
    await page.locator("#schedule-status", { hasText: "Saved: daily at 03:30 UTC, each backup kept 30 days." }).waitFor();
    expect(await page.locator("#schedule-view").textContent()).toContain("daily at 03:30 UTC");
    const [saved] = (await api(`/v1/projects/${tenant.projectId}/scheduled-backups`)).scheduled_backups;
    expect(saved).toMatchObject({ cron_hour: 3, cron_minute: 30, retention_days: 30, label: "nightly", is_active: true });
    await browser.screenshot(page, "schedule");

    const toggle = page.getByRole("button", { name: "Pause schedule" });
    await toggle.focus();
    await page.keyboard.press("Enter");
    await page.locator("#schedule-state [data-state='paused']").waitFor();
    await page.locator("#schedule-status", { hasText: "Schedule paused" }).waitFor();
    const [paused] = (await api(`/v1/projects/${tenant.projectId}/scheduled-backups`)).scheduled_backups;
    // Pausing keeps the rest of the schedule as it was.
    expect(paused).toMatchObject({ cron_hour: 3, cron_minute: 30, retention_days: 30, label: "nightly", is_active: false });
    await page.getByRole("button", { name: "Resume schedule" }).waitFor();

    // The backups page summarises it.
    await page.getByRole("navigation", { name: "Project" }).getByRole("link", { name: "Backups" }).click();
    await page.locator("#schedule-summary", { hasText: "Schedule paused: daily at 03:30 UTC, each kept 30 days." }).waitFor();
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("can do only what the key can: a read-only key sees backups but may not start one", async () => {
    const readOnly = await tenant.key(["backups:read", "jobs:read"]);
    const page = await browser.newPage();
    await signIn(page, readOnly, `/console/projects/${tenant.projectId}`);
    await page.locator("#backups tbody tr", { hasText: "before migration" }).waitFor();
    const before = (await api(`/v1/projects/${tenant.projectId}/backups`)).backups.length;
    await page.getByRole("button", { name: "Back up now" }).click();
    await page.locator("#flash", { hasText: "This key is not allowed to do that: this credential lacks the backups:write scope." }).waitFor();
    expect((await api(`/v1/projects/${tenant.projectId}/backups`)).backups.length).toBe(before);
    await page.close();
  });

  it("a key revoked while signed in sends the user back to sign in, saying why", async () => {
    const doomed = await tenant.key();
    const page = await browser.newPage();
    await signIn(page, doomed, `/console/projects/${tenant.projectId}/jobs`);
    await page.locator("#jobs tbody tr[data-id]").first().waitFor();
    const record = await findApiKey(env.deps, doomed);
    await revokeApiKey(env.deps, tenant.organizationId, record!.id);

    await page.reload();
    await page.waitForURL(`${base}/console?next=${encodeURIComponent(`/console/projects/${tenant.projectId}/jobs`)}`);
    await page.locator("#sign-in-error", { hasText: "Your key stopped working" }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("capydb.console.credential"))).toBeNull();
    await page.close();
  });

  it("another organization's project is not found, as in the API", async () => {
    const other = await env.seedTenant({ database: tenant.database });
    const page = await browser.newPage();
    await signIn(page, key, `/console/projects/${other.projectId}`);
    await page.locator("#flash", { hasText: `Not found: project ${other.projectId} not found.` }).waitFor();
    expect(await page.locator("#backups tbody tr[data-id]").count()).toBe(0);
    await page.close();
  });

  it("restores a backup into a new preview and shows its connection string, which connects to the restored data", async () => {
    const restorer = await tenant.key(["backups:read", "backups:write", "jobs:read", "projects:read", "projects:write", "credentials:read"]);
    const page = await browser.newPage();
    await browser.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
    await signIn(page, restorer, `/console/projects/${tenant.projectId}`);
    const row = page.locator("#backups tbody tr", { hasText: "before migration" });
    const backupId = await row.getAttribute("data-id");
    await row.getByRole("button", { name: `Restore backup before migration (${backupId}) into a new preview` }).click();
    await page.locator("#backup-action-status", { hasText: "Restored into preview" }).waitFor({ timeout: 90_000 });
    await page.getByRole("link", { name: "Open the preview and its connection string" }).click();
    await page.waitForURL(new RegExp(`/console/projects/${tenant.projectId}/previews#pvw_`));
    const previewId = new URL(page.url()).hash.slice(1);
    const previewRow = page.locator(`#previews tr[data-id="${previewId}"]`);
    await previewRow.locator('[data-state="ready"]').waitFor();
    expect(await previewRow.locator('[data-col="from"]').textContent()).toBe(backupId);
    await previewRow.getByRole("button", { name: /^Connection string of preview / }).click();
    await page.locator("#connection").waitFor();
    const url = await page.getByLabel(/^Direct connection/).inputValue();
    expect(url).toMatch(/^postgres(ql)?:\/\//);
    // The copy button puts exactly that string on the clipboard.
    await page.getByRole("button", { name: "Copy", exact: true }).click();
    await page.locator("#copy-status", { hasText: "Copied to the clipboard." }).waitFor();
    expect(await page.evaluate<string>("navigator.clipboard.readText()")).toBe(url);
    // The string works: the preview holds the backup's rows.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const [{ n }] = (await client.query<{ n: string }>("SELECT count(*) AS n FROM customers")).rows as [{ n: string }];
      const [source] = await env.query<{ n: string }>(tenant.database, "SELECT count(*) AS n FROM customers");
      expect(Number(n)).toBe(Number(source!.n));
      expect(Number(n)).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
    await browser.screenshot(page, "previews");
    // The password is only in the field, not left in the page's text.
    await page.getByRole("button", { name: "Hide" }).click();
    expect(await page.content()).not.toContain(new URL(url).password);

    // Delete it (after confirming).
    page.once("dialog", (d) => void d.accept());
    await previewRow.getByRole("button", { name: /^Delete preview / }).click();
    await page.locator("#preview-action-status", { hasText: "deleted." }).waitFor({ timeout: 60_000 });
    const after = (await (await fetch(`${base}/v1/preview-databases/${previewId}`, { headers: { authorization: `Bearer ${restorer}` } })).json()) as any;
    expect(after.preview?.state ?? "gone", JSON.stringify(after)).toMatch(/^(deleted|gone)$/);
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("creates a restore point on a backup and deletes it", async () => {
    const page = await browser.newPage();
    await signIn(page, key, `/console/projects/${tenant.projectId}/restore-points`);
    await page.locator("#restore-points td", { hasText: "No restore points yet." }).waitFor();
    await page.getByLabel("Label", { exact: true }).fill("before the 2.0 migration");
    await page.getByLabel("Note (optional)").fill("keep until March");
    await page.getByRole("button", { name: "Create restore point" }).click();
    const row = page.locator("#restore-points tbody tr", { hasText: "before the 2.0 migration" });
    await row.locator('[data-state="active"]').waitFor();
    const { restore_points: points } = await api(`/v1/projects/${tenant.projectId}/restore-points`);
    expect(points).toEqual([expect.objectContaining({ label: "before the 2.0 migration", note: "keep until March", state: "active", kind: "backup" })]);
    expect(await row.locator('[data-col="backup"]').textContent()).toBe(points[0].backup_id);
    await browser.screenshot(page, "restore-points");
    page.once("dialog", (d) => void d.accept());
    await row.getByRole("button", { name: "Delete restore point before the 2.0 migration" }).click();
    await page.locator("#point-action-status", { hasText: "Restore point before the 2.0 migration deleted." }).waitFor();
    const { restore_points: left } = await api(`/v1/projects/${tenant.projectId}/restore-points`);
    expect(left.filter((p: { state: string }) => p.state === "active")).toEqual([]);
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("shows a failed backup with its error, and offers no download for it", async () => {
    // A project whose database does not exist on its cluster: the dump fails permanently.
    const broken = await env.seedTenant({ database: "no_such_database" });
    const brokenKey = await broken.key();
    const page = await browser.newPage();
    await signIn(page, brokenKey, `/console/projects/${broken.projectId}`);
    await page.locator("#backups td", { hasText: "No backups yet" }).waitFor();
    await page.getByRole("button", { name: "Back up now" }).click();
    const row = page.locator("#backups tbody tr[data-id]").first();
    await row.locator('[data-col="state"] [data-state="failed"]').waitFor({ timeout: 60_000 });
    const res = await fetch(`${base}/v1/projects/${broken.projectId}/backups`, { headers: { authorization: `Bearer ${brokenKey}` } });
    const [failed] = ((await res.json()) as any).backups;
    expect(failed.verification_error, JSON.stringify(failed)).toMatch(/no_such_database/);
    expect(await text(page, '#backups tbody tr[data-id] [data-col="state"] .detail')).toBe(failed.verification_error);
    expect(await row.getByRole("button", { name: /Download/ }).count()).toBe(0);
    await page.locator("#backup-progress", { hasText: "failed:" }).waitFor();
    await browser.screenshot(page, "backups-failed");
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("lists the organization's projects for a key that may read them", async () => {
    const lister = await tenant.key(["projects:read", "backups:read", "jobs:read"]);
    const page = await browser.newPage();
    await signIn(page, lister);
    await page.waitForURL(`${base}/console/projects`);
    const { project } = (await (await fetch(`${base}/v1/projects/${tenant.projectId}`, { headers: { authorization: `Bearer ${lister}` } })).json()) as any;
    const link = page.getByRole("link", { name: new RegExp(`^${project.name}`) });
    await link.waitFor();
    expect(await link.textContent()).toContain(`database ${tenant.database}`);
    await browser.screenshot(page, "projects");
    await link.click();
    await page.waitForURL(`${base}/console/projects/${tenant.projectId}`);
    await page.locator("#project-name", { hasText: project.name }).waitFor();
    await page.close();
  });

  it("with Clerk configured, signs in with the CapyDB session of the same site, read afresh on every call", async () => {
    const clerk = await startFakeClerk();
    const clerkOrg = `org_clerk_${Date.now().toString(36)}`;
    const member = await env.seedTenant({ database: tenant.database, clerkOrganizationId: clerkOrg });
    const port = await freePort();
    const clerkServer = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: env.app({ clerk: clerk.config }).fetch, port, hostname: "127.0.0.1" }, () => resolve(s));
    });
    const origin = `http://127.0.0.1:${port}`;
    try {
      const page = await browser.newPage();
      // Clerk's session cookie, as the dashboard's Clerk script leaves it on the site.
      await browser.context.addCookies([{ name: "__session", value: await clerk.member(clerkOrg), url: origin }]);
      await page.goto(`${origin}/console`);
      await page.getByRole("button", { name: "Use my CapyDB session" }).click();
      await page.waitForURL(`${origin}/console/projects`);
      await page.getByRole("link", { name: new RegExp(member.projectId) }).waitFor();
      expect(await text(page, "#whoami")).toBe(`Session · organization ${member.organizationId}`);
      // Only a marker is kept, not the token: the next call reads the (refreshed) cookie again.
      expect(await page.evaluate(() => sessionStorage.getItem("capydb.console.credential"))).toBe("clerk-session");
      await browser.context.addCookies([{ name: "__session", value: await clerk.member(clerkOrg), url: origin }]);
      await page.goto(`${origin}/console/projects/${member.projectId}`);
      await page.locator("#backups td", { hasText: "No backups yet" }).waitFor();
      expect(page.problems).toEqual([]);
      await page.close();
    } finally {
      await browser.context.clearCookies();
      // Chromium keeps its connections open; close() alone would wait for them.
      (clerkServer as import("node:http").Server).closeAllConnections();
      await new Promise((r) => clerkServer.close(r));
      await clerk.stop();
    }
  });

  it("reads well on a phone: one column, no sideways scrolling", async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await signIn(page, key, `/console/projects/${tenant.projectId}`);
    await page.locator("#backups tbody tr[data-id]").first().waitFor();
    const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth");
    expect(overflow, "page wider than the phone's screen").toBeLessThanOrEqual(0);
    // Each cell carries its column's name, shown beside the value when the table becomes cards.
    expect(await page.locator("#backups tbody tr[data-id] td").first().getAttribute("data-label")).toBe("Created");
    const file = await browser.screenshot(page, "backups-phone");
    expect(statSync(file).size).toBeGreaterThan(0);
    expect(page.problems).toEqual([]);
    await page.close();
  });
});
