import { createWebhookEnv, api, createEndpointViaApi, orgScopes, startReceiver, startWebhookLoops } from "./support.ts";
import type { TestEnv, Tenant } from "../support/env.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { transactWrite } from "../../core/db/store.ts";
import { outboxPut } from "../../core/events/outbox.ts";
import { listDeliveries } from "../../core/webhooks/deliveries.ts";
import { waitFor } from "../worker/support.ts";

/** SPEC section 5's field sets, written out independently of the code's schemas. */
const contract = {
  WebhookEndpoint: ["id", "organization_id", "url", "description", "event_types", "is_active", "health", "created_at", "updated_at"],
  WebhookDelivery: [
    "id",
    "organization_id",
    "endpoint_id",
    "event_type",
    "payload",
    "state",
    "attempts",
    "max_attempts",
    "next_attempt_at",
    "response_status",
    "last_error",
    "created_at",
    "delivered_at",
    "updated_at",
  ],
};

let env: TestEnv;
let a: Tenant;
let b: Tenant;
let keyA: string;
let keyB: string;
beforeAll(async () => {
  env = await createWebhookEnv();
  [a, b] = [await env.seedTenant(), await env.seedTenant()];
  [keyA, keyB] = [await a.key(orgScopes), await b.key(orgScopes)];
});
afterAll(async () => {
  await env?.cleanup();
});

const base = (t: Tenant) => `/v1/organizations/${t.organizationId}/webhook-endpoints`;

describe("webhook endpoints API", () => {
  it("creates (secret shown once), lists, shows, updates and deletes, in the published shapes", async () => {
    const created = await createEndpointViaApi(env, a, keyA, {
      url: "http://127.0.0.1:9/hook",
      event_types: ["backup.completed", "job.failed"],
      description: "chat",
    });
    expect(Object.keys(created).sort()).toEqual(["plaintext_secret", "webhook_endpoint"]);
    expect(Object.keys(created.webhook_endpoint).sort()).toEqual([...contract.WebhookEndpoint!].sort());
    expect(created.webhook_endpoint).toMatchObject({
      organization_id: a.organizationId,
      is_active: true,
      health: "healthy",
      event_types: ["backup.completed", "job.failed"],
      description: "chat",
    });
    const id = created.webhook_endpoint.id;

    const list = await api(env, keyA, "GET", base(a));
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    expect(list.body.webhook_endpoints.map((e: { id: string }) => e.id)).toContain(id);
    expect(JSON.stringify(list.body)).not.toContain(created.plaintext_secret);
    expect(JSON.stringify(list.body)).not.toContain("sealed");

    const patched = await api(env, keyA, "PATCH", `${base(a)}/${id}`, { event_types: [], is_active: false, description: "paused" });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.webhook_endpoint).toMatchObject({
      event_types: [],
      is_active: false,
      health: "disabled",
      description: "paused",
      url: "http://127.0.0.1:9/hook",
    });

    const bad = await api(env, keyA, "PATCH", `${base(a)}/${id}`, { event_types: ["backup.exploded"] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/^event_types\.0/);

    const deleted = await api(env, keyA, "DELETE", `${base(a)}/${id}`);
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
    expect((await api(env, keyA, "GET", `${base(a)}/${id}`)).status).toBe(404);
    expect((await api(env, keyA, "DELETE", `${base(a)}/${id}`)).status).toBe(404);
  });

  it("needs organizations:read / organizations:write, and an organization key", async () => {
    const readOnly = await a.key(["organizations:read"]);
    const backupsOnly = await a.key(["backups:read"]);
    expect((await api(env, backupsOnly, "GET", base(a))).status).toBe(403);
    expect((await api(env, readOnly, "GET", base(a))).status).toBe(200);
    const refused = await api(env, readOnly, "POST", base(a), { url: "http://127.0.0.1:9/x" });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toContain("organizations:write");
    // a project-scoped key can never carry the organization scopes (refused when minted), so it is refused here
    const projectKey = await a.key(["backups:read"], { projectId: a.projectId });
    expect((await api(env, projectKey, "GET", base(a))).status).toBe(403);
    const noBody = await api(env, keyA, "POST", base(a), {});
    expect(noBody.status).toBe(400);
    expect(noBody.body.error).toBe("url: is required");
  });

  it("keeps organizations apart: another organization's endpoints, deliveries and events are 404 and never delivered", async () => {
    const receiverA = await startReceiver();
    const receiverB = await startReceiver();
    const epA = await createEndpointViaApi(env, a, keyA, { url: receiverA.url });
    const epB = await createEndpointViaApi(env, b, keyB, { url: receiverB.url });
    const loops = startWebhookLoops(env);
    try {
      // an event of organization A (as any state change writes it)
      await transactWrite(env.deps, [
        outboxPut(env.deps, {
          type: "job.completed",
          organization_id: a.organizationId,
          project_id: a.projectId,
          data: { job_id: "job_x", project_id: a.projectId },
        }),
      ]);
      const [delivery] = await waitFor(
        "A's delivery",
        async () => {
          const items = (await listDeliveries(env.deps, epA.webhook_endpoint.id, 5)).items;
          return items[0]?.state === "delivered" ? items : undefined;
        },
        20_000,
      );
      expect(receiverA.requests.map((r) => JSON.parse(r.body).type)).toEqual(["job.completed"]);
      await new Promise((r) => setTimeout(r, 1000));
      expect(receiverB.requests).toHaveLength(0);
      expect((await listDeliveries(env.deps, epB.webhook_endpoint.id, 5)).items).toHaveLength(0);

      // B's key on A's things: all 404, as if they did not exist
      const a1 = `${base(a)}/${epA.webhook_endpoint.id}`;
      for (const [method, path] of [
        ["GET", base(a)],
        ["POST", base(a)],
        ["GET", a1],
        ["PATCH", a1],
        ["DELETE", a1],
        ["POST", `${a1}/rotate-secret`],
        ["POST", `${a1}/test`],
        ["GET", `${a1}/deliveries`],
        ["POST", `${a1}/deliveries/${delivery!.id}/redeliver`],
      ] as const) {
        const res = await api(env, keyB, method, path, method === "POST" || method === "PATCH" ? { url: receiverB.url } : undefined);
        expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(404);
      }
      // B's own endpoint path with A's delivery id
      const cross = await api(env, keyB, "POST", `${base(b)}/${epB.webhook_endpoint.id}/deliveries/${delivery!.id}/redeliver`);
      expect(cross.status, JSON.stringify(cross.body)).toBe(404);
      expect(receiverA.requests).toHaveLength(1);

      // A's redeliver: a new delivery id, the same event
      const again = await api(env, keyA, "POST", `${a1}/deliveries/${delivery!.id}/redeliver`);
      expect(again.status, JSON.stringify(again.body)).toBe(202);
      expect(Object.keys(again.body.delivery).sort()).toEqual([...contract.WebhookDelivery!].sort());
      expect(again.body.delivery.id).not.toBe(delivery!.id);
      await waitFor("the redelivery", async () => receiverA.requests.length >= 2 || undefined, 20_000);
      expect(JSON.parse(receiverA.requests[1]!.body).id).toBe(JSON.parse(receiverA.requests[0]!.body).id);
      expect(receiverA.requests[1]!.headers["x-capydb-delivery"]).toBe(again.body.delivery.id);

      const history = await api(env, keyA, "GET", `${a1}/deliveries?limit=1`);
      expect(history.status).toBe(200);
      expect(history.body.deliveries).toHaveLength(1);
      expect(history.body.deliveries[0].id).toBe(again.body.delivery.id);
    } finally {
      await loops.stop();
      await receiverA.close();
      await receiverB.close();
    }
  });

  it("stops sending to an endpoint whose deliveries all failed for 3 days, and says so in health", async () => {
    const receiver = await startReceiver(() => 500);
    const ep = await createEndpointViaApi(env, a, keyA, { url: receiver.url });
    const realNow = env.deps.now;
    const loops = startWebhookLoops(env);
    try {
      await api(env, keyA, "POST", `${base(a)}/${ep.webhook_endpoint.id}/test`);
      await waitFor("a failed attempt", async () => receiver.requests.length >= 1 || undefined, 20_000);
      expect((await api(env, keyA, "GET", `${base(a)}/${ep.webhook_endpoint.id}`)).body.webhook_endpoint.health).toBe("failing");
      // three days and a minute later, the next failure turns it off
      env.deps.now = () => new Date(realNow().getTime() + 3 * 86400_000 + 60_000);
      await waitFor(
        "the endpoint to be disabled",
        async () => {
          const shown = await api(env, keyA, "GET", `${base(a)}/${ep.webhook_endpoint.id}`);
          return shown.body.webhook_endpoint.health === "disabled" ? shown : undefined;
        },
        20_000,
      );
      const shown = (await api(env, keyA, "GET", `${base(a)}/${ep.webhook_endpoint.id}`)).body.webhook_endpoint;
      expect(shown).toMatchObject({ is_active: false, health: "disabled" });
      // turning it back on starts afresh
      const on = await api(env, keyA, "PATCH", `${base(a)}/${ep.webhook_endpoint.id}`, { is_active: true });
      expect(on.body.webhook_endpoint).toMatchObject({ is_active: true, health: "healthy" });
    } finally {
      env.deps.now = realNow;
      await loops.stop();
      await receiver.close();
    }
  });
});
