import { createWebhookEnv, orgScopes, startReceiver, startWebhookLoops } from "../webhooks/support.ts";
import type { Tenant, TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventTypes } from "../../core/events/outbox.ts";
import { freePort } from "../../local/wait.ts";
import { launchBrowser, type Browser } from "./browser.ts";

/**
 * The console's webhooks page as a person uses it: Debian's Chromium against the real API served
 * over HTTP, the relay and the deliveries loop running as `npm start` runs them, and a real
 * receiver on loopback (which only the local stack's setting allows) that checks the signature.
 */
let env: TestEnv;
let tenant: Tenant;
let base: string;
let server: ServerType;
let browser: Browser;

beforeAll(async () => {
  env = await createWebhookEnv();
  tenant = await env.seedTenant({ database: await env.createDatabase() });
  const port = await freePort();
  await new Promise<void>((resolve) => (server = serve({ fetch: env.app().fetch, port, hostname: "127.0.0.1" }, () => resolve())));
  base = `http://127.0.0.1:${port}`;
  browser = await launchBrowser();
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
  await env?.cleanup();
});

async function api(key: string, path: string): Promise<any> {
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } });
  const body = await res.json();
  expect(res.ok, JSON.stringify(body)).toBe(true);
  return body;
}

/** The receiver's own check of `X-CapyDB-Signature`, from the SPEC. */
function signedBy(secret: string, header: string, body: string): boolean {
  const t = /(?:^|,)t=(\d+)/.exec(header)?.[1];
  return header.split(",").includes(`v1=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`);
}

describe("console webhooks page in Chromium", () => {
  it("offers exactly the event types an endpoint can subscribe to", async () => {
    const html = await (await env.app().request("/console/webhooks")).text();
    expect([...html.matchAll(/name="event_types" value="([^"]+)"/g)].map((m) => m[1])).toEqual([...eventTypes]);
  });

  it("adds an endpoint (secret shown once), sends a test the receiver verifies, sends it again, rotates the secret, turns it off, deletes it", async () => {
    const admin = await tenant.key([...orgScopes]);
    const receiver = await startReceiver();
    const loops = startWebhookLoops(env);
    const page = await browser.newPage();
    try {
      await page.goto(`${base}/console`);
      await page.getByLabel("API key").fill(admin);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("navigation", { name: "Organization" }).getByRole("link", { name: "Webhooks" }).click();
      await page.waitForURL(`${base}/console/webhooks`);
      await page.locator("#endpoints td", { hasText: "No endpoints yet." }).waitFor();

      // a private address is refused with the API's reason, next to the form
      await page.getByLabel("URL (https, publicly reachable)").fill("https://10.0.0.1/hooks");
      await page.getByRole("button", { name: "Add endpoint" }).click();
      await page.locator("#endpoint-error:visible", { hasText: "10.0.0.1" }).waitFor();

      // add: the secret is shown once, with the endpoint's URL
      await page.getByLabel("URL (https, publicly reachable)").fill(receiver.url);
      await page.getByLabel("Description (optional)").fill("deploy bot");
      await page.getByLabel("backup.completed").check();
      await page.getByLabel("preview.ready").check();
      await page.getByRole("button", { name: "Add endpoint" }).click();
      await page.locator("#secret:visible").waitFor();
      const secret = await page.getByLabel(/^Secret of /).inputValue();
      expect(secret).toMatch(/^whsec_/);
      expect(await page.locator("#endpoint-error").isHidden()).toBe(true);
      const { webhook_endpoints: endpoints } = await api(admin, `/v1/organizations/${tenant.organizationId}/webhook-endpoints`);
      expect(endpoints).toEqual([
        expect.objectContaining({
          url: receiver.url,
          description: "deploy bot",
          event_types: ["backup.completed", "preview.ready"],
          is_active: true,
          health: "healthy",
        }),
      ]);
      expect(JSON.stringify(endpoints)).not.toContain(secret);
      await page.getByRole("button", { name: "I have kept it" }).click();
      expect(await page.locator("#secret").isHidden()).toBe(true);
      expect(await page.content()).not.toContain(secret);
      const row = page.locator(`#endpoints tr[data-id="${endpoints[0].id}"]`);
      await row.getByText("backup.completed, preview.ready").waitFor();

      // send a test: the receiver gets it signed with the secret the page showed, and the page follows it to delivered
      await row.getByRole("button", { name: `Send a test event to ${receiver.url}` }).click();
      await page.locator("#endpoint-action-status", { hasText: `Test event sent to ${receiver.url}` }).waitFor();
      const delivered = page.locator('#deliveries tbody tr[data-id] [data-state="delivered"]');
      await delivered.first().waitFor();
      expect(receiver.requests).toHaveLength(1);
      const [first] = receiver.requests;
      expect(first!.headers["x-capydb-event"]).toBe("webhook.test");
      expect(signedBy(secret, String(first!.headers["x-capydb-signature"]), first!.body)).toBe(true);
      const firstRow = page.locator(`#deliveries tr[data-id="${first!.headers["x-capydb-delivery"]}"]`);
      await firstRow.getByText("HTTP 200").waitFor();
      await browser.screenshot(page, "webhooks");

      // send it again: a second delivery of the same event
      await firstRow.getByRole("button", { name: `Send delivery ${first!.headers["x-capydb-delivery"]} again` }).click();
      await page.locator("#endpoint-action-status", { hasText: "Delivery sent again" }).waitFor();
      await page.locator('#deliveries tbody tr[data-id] [data-state="delivered"]').nth(1).waitFor();
      expect(receiver.requests).toHaveLength(2);
      expect(receiver.requests[1]!.headers["x-capydb-delivery"]).not.toBe(first!.headers["x-capydb-delivery"]);
      expect(JSON.parse(receiver.requests[1]!.body).id).toBe(JSON.parse(first!.body).id);

      // a new secret: shown once; the next delivery is signed by both (the old one for 24 hours)
      page.once("dialog", (d) => void d.accept());
      await row.getByRole("button", { name: `New signing secret for ${receiver.url}` }).click();
      await page.locator("#endpoint-action-status", { hasText: "has a new signing secret" }).waitFor();
      await page.locator("#secret:visible").waitFor();
      const rotated = await page.getByLabel(/^Secret of /).inputValue();
      expect(rotated).toMatch(/^whsec_/);
      expect(rotated).not.toBe(secret);
      await page.getByRole("button", { name: "I have kept it" }).click();
      await row.getByRole("button", { name: `Send a test event to ${receiver.url}` }).click();
      await page.locator('#deliveries tbody tr[data-id] [data-state="delivered"]').nth(2).waitFor();
      const third = receiver.requests[2]!;
      expect(signedBy(rotated, String(third.headers["x-capydb-signature"]), third.body)).toBe(true);
      expect(signedBy(secret, String(third.headers["x-capydb-signature"]), third.body)).toBe(true);

      // turn off, then delete
      await row.getByRole("button", { name: `Turn off ${receiver.url}` }).click();
      await row.locator('[data-state="disabled"]').waitFor();
      expect((await api(admin, `/v1/organizations/${tenant.organizationId}/webhook-endpoints`)).webhook_endpoints[0].is_active).toBe(false);
      page.once("dialog", (d) => void d.accept());
      await row.getByRole("button", { name: `Delete endpoint ${receiver.url}` }).click();
      await page.locator("#endpoints td", { hasText: "No endpoints yet." }).waitFor();
      expect((await api(admin, `/v1/organizations/${tenant.organizationId}/webhook-endpoints`)).webhook_endpoints).toEqual([]);
      // the one failed request is the refused private address above (the browser logs every 4xx)
      expect(page.problems).toEqual(["Failed to load resource: the server responded with a status of 400 (Bad Request)"]);
    } finally {
      await page.close();
      await loops.stop();
      await receiver.close();
    }
  });

  it("a key that may only read sees the endpoints, and adding one says which permission is missing", async () => {
    const admin = await tenant.key([...orgScopes]);
    const created = await fetch(`${base}/v1/organizations/${tenant.organizationId}/webhook-endpoints`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ url: "http://127.0.0.1:9/hooks", description: "seen by the reader" }),
    });
    const { webhook_endpoint: endpoint } = (await created.json()) as { webhook_endpoint: { id: string } };
    expect(created.status).toBe(201);
    const { webhook_endpoints: all } = await api(admin, `/v1/organizations/${tenant.organizationId}/webhook-endpoints`);
    const reader = await tenant.key(["organizations:read"]);
    const page = await browser.newPage();
    await page.goto(`${base}/console/webhooks`);
    await page.waitForURL(`${base}/console?next=${encodeURIComponent("/console/webhooks")}`);
    await page.getByLabel("API key").fill(reader);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/console/webhooks`);
    await page.locator(`#endpoints tr[data-id="${endpoint.id}"]`, { hasText: "seen by the reader" }).waitFor();
    expect(await page.locator("#endpoints tr[data-id]").count()).toBe(all.length);
    await page.getByLabel("URL (https, publicly reachable)").fill("https://example.com/hooks");
    await page.getByRole("button", { name: "Add endpoint" }).click();
    await page.locator("#endpoint-error:visible", { hasText: "organizations:write" }).waitFor();
    await page.close();
  });
});
