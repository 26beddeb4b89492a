// First: the API's schemas call `.openapi()`, which exists only on zod schemas built after
// @hono/zod-openapi has loaded.
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../core/ids.ts";
import { listBaseBackups, putGap } from "../../core/wal/archive.ts";
import { recordDrillResult } from "../../core/wal/drills.ts";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import { startWorkerLoop } from "../../local/loops.ts";
import { freePort } from "../../local/wait.ts";
import { startArchivedCluster, type ArchivedCluster } from "../pg/archived-cluster.ts";
import { publishArchive } from "../pg/publish-archive.ts";
import { countAndMaxId } from "../support/preview-rows.ts";
import { artifactsDir, launchBrowser, type Browser } from "./browser.ts";

/**
 * The project page's point-in-time recovery in Chromium: the restorable window of a real archive
 * (pg_receivewal WAL and two pg_basebackup tars of a real PostgreSQL, published in the archive's
 * storage contract, with a gap recorded between them as the receiver records a lost slot) drawn
 * as a timeline, the "no archive" state, the backups' size and duration chart, and the time picker
 * restoring a chosen moment into a preview that holds exactly the rows of that moment.
 */
let env: TestEnv;
let src: ArchivedCluster;
let archived: Tenant;
let bare: Tenant;
let base: string;
let server: ServerType;
let browser: Browser;
let worker: ReturnType<typeof startWorkerLoop> | undefined;
/** Commit time of each row of `orders`, by id (1-based). */
const commits: Date[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function insertRows(from: number, to: number, pauseMs = 60) {
  for (let id = from; id <= to; id++) {
    await src.query("shop", "INSERT INTO orders VALUES ($1::int, $1::int * 1.5)", [id]);
    await sleep(pauseMs);
  }
}

beforeAll(async () => {
  env = await createTestEnv();
  src = await startArchivedCluster();
  await src.query("postgres", "CREATE DATABASE shop");
  await src.query("shop", "CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL)");
  const first = await src.baseBackup();
  await insertRows(1, 4);
  // The gap starts here (as a lost replication slot would make it) and lasts until the next base backup.
  await sleep(1_500);
  const gapFrom = new Date();
  await sleep(1_000);
  const [{ lsn: gapLsn }] = (await src.query<{ lsn: string }>("postgres", "SELECT pg_current_wal_insert_lsn()::text AS lsn")) as [{ lsn: string }];
  await src.query("postgres", "SELECT pg_switch_wal()");
  await insertRows(5, 6);
  const second = await src.baseBackup();
  await insertRows(7, 9);
  await sleep(1_200); // a whole second between rows 9 and 10: the picker's field is to the second
  await insertRows(10, 12);
  const rows = await src.query<{ at: string }>("shop", "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))::text AS at FROM orders ORDER BY id");
  commits.push(...rows.map((r) => new Date(Number(r.at) * 1000)));

  archived = await env.seedTenant({ clusterUrl: src.server.url.replace(/\/postgres$/, "/postgres?sslmode=disable"), database: "shop" });
  await publishArchive(env.deps, src, archived.clusterId, [first, second]);
  const [newest] = (await listBaseBackups(env.deps, archived.clusterId)).sort((a, b) => Date.parse(b.started_at) - Date.parse(a.started_at));
  await putGap(env.deps, {
    item_type: "wal_gap",
    id: newId("walGap", gapFrom),
    cluster_id: archived.clusterId,
    reason: "slot_lost",
    timeline: 1,
    from_lsn: gapLsn,
    to_lsn: newest!.start_lsn!,
    from: gapFrom.toISOString(),
    to: null,
    segments: [],
    detail: "the replication slot was lost",
    detected_at: new Date().toISOString(),
  });
  bare = await env.seedTenant();

  const port = await freePort();
  await new Promise<void>((resolve) => {
    server = serve({ fetch: env.app().fetch, port, hostname: "127.0.0.1" }, () => resolve());
  });
  base = `http://127.0.0.1:${port}`;
  worker = startWorkerLoop(env.deps, createWorkerHandler(env.deps, { pitrArchiveWaitSeconds: 2 }), { concurrency: 1, waitSeconds: 1 });
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await new Promise((r) => server?.close(r));
  await src?.stop();
  await env?.cleanup();
});

async function api(t: Tenant, path: string, init: RequestInit = {}, key?: string): Promise<any> {
  const res = await fetch(`${base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${key ?? (await t.key())}`, "content-type": "application/json", ...init.headers },
  });
  const body = await res.json();
  expect(res.ok, JSON.stringify(body)).toBe(true);
  return body;
}

async function signIn(page: Page, credential: string, path: string) {
  await page.goto(`${base}${path}`);
  await page.waitForURL(/\/console(\?|$)/);
  await page.getByLabel("API key").fill(credential);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}${path}`);
}

/** The console's way of writing a time ("6 Dec 2026, 14:31:05 UTC"). */
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (n: number) => String(n).padStart(2, "0");
function utc(iso: string | number): string {
  const d = new Date(iso);
  const ms = d.getUTCMilliseconds();
  const clock = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${ms ? `.${String(ms).padStart(3, "0")}` : ""}`;
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${clock} UTC`;
}
const text = async (page: Page, selector: string) => ((await page.locator(selector).textContent()) ?? "").trim();

describe("console: point-in-time recovery and the backups chart", () => {
  it("draws the restorable window of a real archive: base backups as ticks, coverage, the gap, lag and drill in words; keyboard and phone", async () => {
    const { pitr } = await api(archived, `/v1/projects/${archived.projectId}/pitr`);
    expect(pitr.available).toBe(true);
    expect(pitr.base_backups).toHaveLength(2);
    expect(pitr.gaps).toHaveLength(1);
    const page = await browser.newPage();
    await signIn(page, await archived.key(), `/console/projects/${archived.projectId}`);
    await page.locator('#pitr-summary[data-available="true"]').waitFor();
    const timeline = page.getByRole("slider", { name: "Point in time to restore to" });
    await timeline.waitFor();
    expect(await page.locator('#pitr-timeline [data-kind="base-backup"]').count()).toBe(2);
    expect(await page.locator('#pitr-timeline [data-kind="coverage"]').count()).toBe(2);
    expect(await page.locator('#pitr-timeline [data-kind="gap"]').count()).toBe(1);
    // The same facts in words: the text alternative.
    expect(await text(page, "#pitr-window")).toBe(`from ${utc(pitr.earliest_restore_time)} to ${utc(pitr.latest_restore_time)}`);
    expect(await text(page, "#pitr-gaps")).toBe(`from ${utc(pitr.gaps[0].from)} to ${utc(pitr.gaps[0].to)}: not restorable`);
    expect(await page.locator("#pitr-base-backups li").count()).toBe(2);
    expect(await text(page, "#pitr-drill")).toBe("no drill yet");
    expect(await text(page, "#pitr-lag")).toMatch(/^(\d+ s|\d+ min \d+ s|under a second) \(now minus the latest restorable time\)$/);
    expect(await text(page, "#pitr-summary")).toContain("except one gap");

    // Keyboard: the timeline is a slider, next in the tab order after "Back up now"; Home and End go to the window's ends.
    await page.getByRole("button", { name: "Back up now" }).focus();
    await page.keyboard.press("Tab");
    expect(await page.evaluate<string | null>("document.activeElement?.getAttribute('aria-label')")).toBe("Point in time to restore to");
    await page.keyboard.press("Home");
    expect(await timeline.getAttribute("aria-valuetext")).toBe(`${utc(pitr.earliest_restore_time)}, restorable`);
    // (Chromium writes the field's value without ":00" seconds.)
    expect(Date.parse(`${await page.getByLabel("Restore the database as it was at (UTC)").inputValue()}Z`)).toBe(Date.parse(pitr.earliest_restore_time));
    await page.keyboard.press("End");
    await page.locator("#pitr-what", { hasText: `as it was at ${utc(pitr.latest_restore_time)}` }).waitFor();
    await page.locator("#pitr").screenshot({ path: path.join(artifactsDir, "pitr-section.png") }); // docs/console-pitr.png

    // A click inside the gap: refused, naming the gap's bounds, and nothing can be started.
    const gap = (await page.locator('#pitr-timeline [data-kind="gap"]').boundingBox())!;
    await page.mouse.click(gap.x + gap.width / 2, gap.y + gap.height / 2);
    await page.locator("#pitr-error", { hasText: `falls in a gap of the WAL archive, from ${utc(pitr.gaps[0].from)} to ${utc(pitr.gaps[0].to)}` }).waitFor();
    expect(await page.getByRole("button", { name: "Restore into a new preview" }).isDisabled()).toBe(true);
    // A time after the latest restorable one is moved back to it, and the page says so.
    const later = new Date(Date.parse(pitr.latest_restore_time) + 3_600_000).toISOString().slice(0, 19);
    await page.getByLabel("Restore the database as it was at (UTC)").fill(later);
    await page
      .locator("#pitr-what", { hasText: `is later than the latest restorable time: the restore is moved back to ${utc(pitr.latest_restore_time)}` })
      .waitFor();
    expect(await page.getByRole("button", { name: "Restore into a new preview" }).isEnabled()).toBe(true);
    await browser.screenshot(page, "pitr-timeline");

    // The daily drill's outcome (core/wal/drills.ts records it; test/worker/drill.test.ts runs real ones), in words.
    const drilled = pitr.earliest_restore_time;
    await recordDrillResult(env.deps, archived.clusterId, {
      at: new Date().toISOString(),
      restore_time: drilled,
      ok: false,
      seconds: 42,
      error: "segment 000000010000000000000003 does not match its SHA-256",
      job_id: newId("job", new Date()),
      database: null,
      databases: null,
      tables: null,
      rows: null,
      base_backup_id: null,
      wal_segments: null,
      checked_on: null,
    });
    await page.reload();
    await page.locator("#pitr-drill", { hasText: "failed" }).waitFor();
    expect(await text(page, "#pitr-drill")).toBe(
      `failed just now, restoring ${utc(drilled)} (after 42 s): segment 000000010000000000000003 does not match its SHA-256.`,
    );
    expect(page.problems).toEqual([]);
    await page.close();

    // On a phone: the timeline fits the screen, nothing scrolls sideways.
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await signIn(phone, await archived.key(), `/console/projects/${archived.projectId}`);
    await phone.locator('#pitr-timeline [data-kind="gap"]').waitFor();
    expect(await phone.evaluate<number>("document.documentElement.scrollWidth - document.documentElement.clientWidth")).toBeLessThanOrEqual(0);
    expect((await phone.locator("#pitr-timeline svg").boundingBox())!.width).toBeLessThanOrEqual(390);
    await browser.screenshot(phone, "pitr-timeline-phone");
    await phone.close();
  });

  it("a project without an archive says so plainly; its backups chart has one point per backup, with a table", async () => {
    const first = (await api(bare, `/v1/projects/${bare.projectId}/backups`, { method: "POST", body: JSON.stringify({ label: "first" }) })).job;
    for (let i = 0; i < 120; i++) {
      const { job } = await api(bare, `/v1/jobs/${first.id}`);
      if (job.state === "completed") break;
      expect(job.state).not.toBe("failed");
      await sleep(500);
    }
    const page = await browser.newPage();
    await signIn(page, await bare.key(), `/console/projects/${bare.projectId}`);
    await page.locator("#pitr-summary", { hasText: "No archive: this project's cluster has no WAL archive, so there is no point-in-time recovery." }).waitFor();
    expect(await page.locator("#pitr-timeline svg").count()).toBe(0);
    expect(await page.locator("#pitr-form").isHidden()).toBe(true);

    const sizePoints = page.locator('#backup-chart svg[data-series="size"] circle');
    await sizePoints.first().waitFor();
    expect(await sizePoints.count()).toBe(1);
    // A second backup, from the page: the chart grows by one point when it completes.
    await page.getByRole("button", { name: "Back up now" }).click();
    await page.locator("#backup-progress", { hasText: "completed in" }).waitFor({ timeout: 60_000 });
    await page.locator("#backup-chart-summary", { hasText: "2 completed backups" }).waitFor();
    const { backups } = await api(bare, `/v1/projects/${bare.projectId}/backups`);
    const done = backups.filter((b: { state: string }) => b.state === "completed");
    expect(done).toHaveLength(2);
    expect(await sizePoints.count()).toBe(2);
    expect(await page.locator('#backup-chart svg[data-series="duration"] circle').count()).toBe(2);
    expect((await sizePoints.evaluateAll((els) => els.map((e) => e.getAttribute("data-backup-id")))).sort()).toEqual(
      done.map((b: { id: string }) => b.id).sort(),
    );
    // The table alternative: one row per backup, oldest first, with its size and how long it took.
    await page.getByText("The same as a table").click();
    const rows = page.locator("#backup-chart-table tbody tr[data-id]");
    expect(await rows.count()).toBe(2);
    expect(await rows.first().getAttribute("data-id")).toBe(done.at(-1).id);
    expect(await rows.first().locator('[data-col="took"]').textContent()).toMatch(/^\d+ s$|^\d+ min \d+ s$/);
    expect(await rows.first().locator('[data-col="size"]').textContent()).toMatch(/^\d+(\.\d)? (B|KiB|MiB)$/);
    await browser.screenshot(page, "backups-chart");
    expect(page.problems).toEqual([]);
    await page.close();
  }, 120_000);

  it("picks a time, restores it into a new preview that becomes ready, and the preview holds exactly the rows of that time", async () => {
    // A whole second after row 9's commit and before row 10's.
    const at = Math.ceil(commits[8]!.getTime() / 1000) * 1000;
    expect(at).toBeLessThan(commits[9]!.getTime());
    const restorer = await archived.key(["backups:read", "backups:write", "jobs:read", "projects:read", "projects:write", "credentials:read"]);
    const page = await browser.newPage();
    await signIn(page, restorer, `/console/projects/${archived.projectId}`);
    await page.getByRole("slider", { name: "Point in time to restore to" }).waitFor();
    await page.getByLabel("Restore the database as it was at (UTC)").fill(new Date(at).toISOString().slice(0, 19));
    await page.locator("#pitr-what", { hasText: `Will restore the project's database as it was at ${utc(at)}` }).waitFor();
    page.once("dialog", (d) => {
      expect(d.message()).toBe(`Restore the project's database as it was at ${utc(at)} into a new preview database?`);
      void d.accept();
    });
    await page.getByRole("button", { name: "Restore into a new preview" }).click();
    await page.locator("#pitr-progress", { hasText: "Restored into preview" }).waitFor({ timeout: 120_000 });
    expect(await text(page, "#pitr-progress")).toContain(`the project's database as it was at ${utc(at)}.`);
    await page.getByRole("link", { name: "Open the preview and its connection string" }).click();
    await page.waitForURL(new RegExp(`/console/projects/${archived.projectId}/previews#pvw_`));
    const previewId = new URL(page.url()).hash.slice(1);
    const row = page.locator(`#previews tr[data-id="${previewId}"]`);
    await row.locator('[data-state="ready"]').waitFor();
    expect(await row.locator('[data-col="from"]').textContent()).toBe(`the project as it was at ${utc(at)}`);
    const { preview } = await api(archived, `/v1/preview-databases/${previewId}`, {}, restorer);
    expect(preview).toMatchObject({ source_kind: "pitr", source_restore_time: new Date(at).toISOString().replace(/\.000Z$/, "Z") });
    await row.getByRole("button", { name: /^Connection string of preview / }).click();
    await page.locator("#connection").waitFor();
    const url = await page.getByLabel(/^Direct connection/).inputValue();
    expect(url).toMatch(/^postgres(ql)?:\/\//);
    expect(await countAndMaxId(url, "orders")).toEqual({ n: "9", max: 9 });
    await browser.screenshot(page, "pitr-restored-preview");
    expect(page.problems).toEqual([]);
    await page.close();
  }, 180_000);
});
