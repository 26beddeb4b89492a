import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

/** Where the browser tests leave their screenshots (gitignored). */
export const artifactsDir = path.resolve(import.meta.dirname, "../../test-artifacts/console");

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it when missing). */
export const chromiumPath = process.env.CAPYDB_CHROMIUM ?? "/usr/bin/chromium";

export interface Browser {
  context: BrowserContext;
  /** A new tab: its own sessionStorage, so its own sign-in. Collects console errors and CSP reports. */
  newPage(opts?: { viewport?: { width: number; height: number } }): Promise<Page & { problems: string[] }>;
  screenshot(page: Page, name: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * Launches Chromium headless with a fresh profile, nothing phoning home (no QUIC, sync, component
 * updates or background networking): the pages must work offline on the local stack.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`Chromium is not at ${chromiumPath}: apt-get install -y chromium (.ci/run does it), or set CAPYDB_CHROMIUM`);
  }
  const profile = mkdtempSync(path.join(tmpdir(), "capydb-chromium-"));
  mkdirSync(artifactsDir, { recursive: true });
  // launchPersistentContext is how Playwright takes a --user-data-dir: a fresh one per run.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1100, height: 760 },
    locale: "en-GB",
    timezoneId: "UTC",
  });
  context.setDefaultTimeout(30_000);
  // The first page the persistent context opened on its own.
  for (const p of context.pages()) await p.close();
  return {
    context,
    async newPage(opts = {}) {
      const page = (await context.newPage()) as Page & { problems: string[] };
      page.problems = [];
      if (opts.viewport) await page.setViewportSize(opts.viewport);
      page.on("console", (m) => {
        if (m.type() === "error" && !/Failed to load resource: the server responded with a status of (401|403|404)/.test(m.text()))
          page.problems.push(m.text());
      });
      page.on("pageerror", (e) => page.problems.push(`uncaught: ${e.message}`));
      return page;
    },
    async screenshot(page, name) {
      const file = path.join(artifactsDir, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
