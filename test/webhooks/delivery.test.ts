import { createWebhookEnv, api, createEndpointViaApi, fastDelivery, orgScopes, startReceiver, startWebhookLoops } from "./support.ts";
import type { TestEnv, Tenant } from "../support/env.ts";
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listDeliveries } from "../../core/webhooks/deliveries.ts";
import { verifySignature } from "../../core/contract/webhook-signature.ts";
import { postBackup, runQueueUntilSettled, smallDatabase, waitFor } from "../worker/support.ts";

let env: TestEnv;
let tenant: Tenant;
let key: string;
beforeAll(async () => {
  env = await createWebhookEnv();
  tenant = await env.seedTenant({ database: await smallDatabase(env) });
  key = await tenant.key(orgScopes);
});
afterAll(async () => {
  await env?.cleanup();
});

/** The receiver's own check, written from the SPEC and not with the service's code. */
function receiverAccepts(secret: string, header: string, body: string): boolean {
  const parts = Object.fromEntries(header.split(",").map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)]));
  const mac = createHmac("sha256", secret).update(`${parts.t}.${body}`).digest("hex");
  return header.split(",").some((p) => p === `v1=${mac}`) && Math.abs(Date.now() / 1000 - Number(parts.t)) < 300;
}

describe("webhook deliveries to a real receiver", () => {
  it("delivers backup.completed for a real backup, signed, naming the backup", async () => {
    // prepare
    const receiver = await startReceiver();
    const { webhook_endpoint: endpoint, plaintext_secret: secret } = await createEndpointViaApi(env, tenant, key, {
      url: receiver.url,
      event_types: ["backup.completed"],
      description: "deploy pipeline",
    });
    expect(secret).toMatch(/^whsec_/);
    const loops = startWebhookLoops(env);
    try {
      // act: a real backup, through the API and the worker
      const job = await postBackup(env, tenant, { label: "webhook" });
      const [settled] = await runQueueUntilSettled(env.deps, [job.id]);
      expect(settled!.state).toBe("completed");
      await waitFor("the receiver to get the event", async () => receiver.requests.length >= 1 || undefined, 30_000);
      // assess
      const [req] = receiver.requests;
      expect(req!.method).toBe("POST");
      expect(req!.headers["content-type"]).toBe("application/json");
      expect(req!.headers["user-agent"]).toBe("capydb-webhooks/1.0");
      expect(req!.headers["x-capydb-event"]).toBe("backup.completed");
      expect(req!.headers["x-capydb-delivery"]).toMatch(/^whd_/);
      expect(receiverAccepts(secret, String(req!.headers["x-capydb-signature"]), req!.body), String(req!.headers["x-capydb-signature"])).toBe(true);
      expect(receiverAccepts("whsec_wrong", String(req!.headers["x-capydb-signature"]), req!.body)).toBe(false);
      const event = JSON.parse(req!.body);
      expect(Object.keys(event).sort()).toEqual(["created_at", "data", "id", "type"]);
      expect(event).toMatchObject({
        id: expect.stringMatching(/^evt_/),
        type: "backup.completed",
        data: { project_id: tenant.projectId, backup_id: settled!.backup_id, job_id: job.id, state: "completed", verification_state: "verified" },
      });
      expect(event.data.backup_key).toContain(settled!.backup_id);
      expect(event.data.size_bytes).toBeGreaterThan(0);
      // only the subscribed type came (job.completed was filtered out), and the history says delivered
      await new Promise((r) => setTimeout(r, 1000));
      expect(receiver.requests.map((r) => r.headers["x-capydb-event"])).toEqual(["backup.completed"]);
      const history = await api(env, key, "GET", `/v1/organizations/${tenant.organizationId}/webhook-endpoints/${endpoint.id}/deliveries`);
      expect(history.status, JSON.stringify(history.body)).toBe(200);
      expect(history.body.deliveries).toEqual([
        expect.objectContaining({
          id: req!.headers["x-capydb-delivery"],
          state: "delivered",
          attempts: 1,
          max_attempts: 8,
          response_status: 200,
          event_type: "backup.completed",
          payload: event,
        }),
      ]);
      const shown = await api(env, key, "GET", `/v1/organizations/${tenant.organizationId}/webhook-endpoints/${endpoint.id}`);
      expect(shown.body.webhook_endpoint.health).toBe("healthy");
    } finally {
      await loops.stop();
      await receiver.close();
    }
  });

  it("retries a receiver that answers 500 twice: three attempts, one success, one delivery id", async () => {
    const receiver = await startReceiver((_r, n) => (n <= 2 ? 500 : 200));
    const { webhook_endpoint: endpoint } = await createEndpointViaApi(env, tenant, key, { url: receiver.url });
    const loops = startWebhookLoops(env);
    try {
      const test = await api(env, key, "POST", `/v1/organizations/${tenant.organizationId}/webhook-endpoints/${endpoint.id}/test`);
      expect(test.status, JSON.stringify(test.body)).toBe(202);
      expect(test.body.delivery).toMatchObject({ state: "pending", attempts: 0, event_type: "webhook.test" });
      const delivered = await waitFor(
        "the delivery to succeed",
        async () => {
          const [d] = (await listDeliveries(env.deps, endpoint.id, 5)).items;
          return d?.state === "delivered" ? d : undefined;
        },
        30_000,
      );
      expect(delivered).toMatchObject({ id: test.body.delivery.id, attempts: 3, response_status: 200, last_error: null });
      // updated_at follows the delivery: set when it was queued, moved by each attempt, last at its success.
      expect(test.body.delivery.updated_at).toBe(test.body.delivery.created_at);
      expect(delivered.updated_at).toBe(delivered.delivered_at);
      const listed = await api(env, key, "GET", `/v1/organizations/${tenant.organizationId}/webhook-endpoints/${endpoint.id}/deliveries`);
      expect(listed.body.deliveries[0]).toMatchObject({ id: delivered.id, updated_at: delivered.delivered_at });
      expect(receiver.requests).toHaveLength(3);
      expect(new Set(receiver.requests.map((r) => r.headers["x-capydb-delivery"]))).toEqual(new Set([test.body.delivery.id]));
      // every attempt carries the same body, each freshly signed
      expect(new Set(receiver.requests.map((r) => r.body)).size).toBe(1);
    } finally {
      await loops.stop();
      await receiver.close();
    }
  });

  it("does not wait forever for a receiver that never answers: the attempt times out and is retried", async () => {
    const receiver = await startReceiver((_r, n) => (n === 1 ? "hang" : 200));
    const { webhook_endpoint: endpoint } = await createEndpointViaApi(env, tenant, key, { url: receiver.url });
    const loops = startWebhookLoops(env, { ...fastDelivery, timeoutMs: 1_000 });
    try {
      await api(env, key, "POST", `/v1/organizations/${tenant.organizationId}/webhook-endpoints/${endpoint.id}/test`);
      const delivered = await waitFor(
        "the delivery to succeed",
        async () => {
          const [d] = (await listDeliveries(env.deps, endpoint.id, 5)).items;
          return d?.state === "delivered" ? d : undefined;
        },
        30_000,
      );
      expect(delivered.attempts).toBe(2);
      expect(receiver.requests).toHaveLength(2);
    } finally {
      await loops.stop();
      await receiver.close();
    }
  });

  it("gives up after the last attempt: the delivery is failed, the endpoint failing, the error kept redacted", async () => {
    const receiver = await startReceiver((_r, _n, res) => {
      res.writeHead(503).end(`database password=hunter2 is wrong ${"x".repeat(3000)}`);
    });
    const { webhook_endpoint: endpoint } = await createEndpointViaApi(env, tenant, key, { url: receiver.url });
    const loops = startWebhookLoops(env, { ...fastDelivery, backoffSeconds: [0, 0, 0, 0, 0, 0, 0] });
    try {
      await api(env, key, "POST", `/v1/organizations/${tenant.organizationId}/webhook-endpoints/${endpoint.id}/test`);
      const failed = await waitFor(
        "the delivery to fail for good",
        async () => {
          const [d] = (await listDeliveries(env.deps, endpoint.id, 5)).items;
          return d?.state === "failed" ? d : undefined;
        },
        40_000,
      );
      expect(failed).toMatchObject({ attempts: 8, response_status: 503, delivered_at: null });
      expect(receiver.requests).toHaveLength(8);
      expect(failed.last_error).toContain("HTTP 503");
      expect(failed.last_error).not.toContain("hunter2");
      expect(Buffer.byteLength(failed.response_body ?? "")).toBeLessThanOrEqual(1024);
      const shown = await api(env, key, "GET", `/v1/organizations/${tenant.organizationId}/webhook-endpoints/${endpoint.id}`);
      expect(shown.body.webhook_endpoint).toMatchObject({ health: "failing", is_active: true });
    } finally {
      await loops.stop();
      await receiver.close();
    }
  });
});

describe("secret rotation", () => {
  it("signs with both secrets during the 24 h overlap, then with the new one only", async () => {
    const receiver = await startReceiver();
    const { webhook_endpoint: endpoint, plaintext_secret: oldSecret } = await createEndpointViaApi(env, tenant, key, { url: receiver.url });
    const rotated = await api(env, key, "POST", `/v1/organizations/${tenant.organizationId}/webhook-endpoints/${endpoint.id}/rotate-secret`);
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    const newSecret: string = rotated.body.plaintext_secret;
    expect(newSecret).toMatch(/^whsec_/);
    expect(newSecret).not.toBe(oldSecret);
    expect(Object.keys(rotated.body.webhook_endpoint).sort()).toEqual(
      ["created_at", "description", "event_types", "health", "id", "is_active", "organization_id", "updated_at", "url"].sort(),
    );

    const realNow = env.deps.now;
    const loops = startWebhookLoops(env);
    try {
      // during the overlap
      await api(env, key, "POST", `/v1/organizations/${tenant.organizationId}/webhook-endpoints/${endpoint.id}/test`);
      await waitFor("the first test delivery", async () => receiver.requests.length >= 1 || undefined, 20_000);
      const during = receiver.requests[0]!;
      const sig = String(during.headers["x-capydb-signature"]);
      expect(receiverAccepts(oldSecret, sig, during.body)).toBe(true);
      expect(receiverAccepts(newSecret, sig, during.body)).toBe(true);

      // after it: the service's clock 24 h and a minute later
      env.deps.now = () => new Date(realNow().getTime() + 24 * 3600_000 + 60_000);
      await api(env, key, "POST", `/v1/organizations/${tenant.organizationId}/webhook-endpoints/${endpoint.id}/test`);
      await waitFor("the second test delivery", async () => receiver.requests.length >= 2 || undefined, 20_000);
      const after = receiver.requests[1]!;
      const sig2 = String(after.headers["x-capydb-signature"]);
      const t = Number(/t=(\d+)/.exec(sig2)![1]);
      expect(verifySignature({ secret: newSecret, header: sig2, body: after.body, now: t * 1000 })).toMatchObject({ ok: true });
      expect(verifySignature({ secret: oldSecret, header: sig2, body: after.body, now: t * 1000 })).toMatchObject({ ok: false });
      expect(sig2.match(/v1=/g)).toHaveLength(1);
    } finally {
      env.deps.now = realNow;
      await loops.stop();
      await receiver.close();
    }
  });
});
