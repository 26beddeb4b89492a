import { createWebhookEnv, api, fastDelivery, orgScopes, startReceiver } from "./support.ts";
import type { TestEnv, Tenant } from "../support/env.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deliverMessage } from "../../core/webhooks/deliver.ts";
import { createDelivery, getDelivery, messageOf, testEvent } from "../../core/webhooks/deliveries.ts";
import { createEndpoint, getEndpointItem } from "../../core/webhooks/endpoints.ts";
import { refusedAddress } from "../../core/webhooks/destination.ts";

/**
 * The refusals run with the local-stack setting off (`strict`): only public https receivers. No
 * test here sends a packet anywhere but 127.0.0.1: private and metadata addresses are refused
 * before any connection, and where a connection could slip through, the address the test makes
 * the resolver answer is a tripwire server on loopback that must see no connection.
 */
let env: TestEnv;
let tenant: Tenant;
let key: string;
beforeAll(async () => {
  env = await createWebhookEnv({ strict: true });
  tenant = await env.seedTenant();
  key = await tenant.key(orgScopes);
});
afterAll(async () => {
  await env?.cleanup();
});

const endpointsPath = () => `/v1/organizations/${tenant.organizationId}/webhook-endpoints`;

describe("webhook URLs that could reach inside the network are refused when created", () => {
  it.each([
    ["https://127.0.0.1/hook", "loopback"],
    ["https://10.0.0.1/hook", "private"],
    ["https://169.254.169.254/latest/meta-data/", "metadata"],
    ["https://[::1]/hook", "loopback"],
    ["https://[::ffff:127.0.0.1]/hook", "loopback"],
    ["https://[fd00:ec2::254]/hook", "metadata"],
    ["https://2130706433/hook", "loopback"], // 127.0.0.1 as one number
    ["https://localhost/hook", "loopback"], // a name resolving to loopback, by the system resolver
    ["http://hooks.example.com/hook", "https"],
    ["https://user:pw@hooks.example.com/hook", "credentials"],
    ["not a url", "valid URL"],
  ])("%s (%s)", async (url, why) => {
    const res = await api(env, key, "POST", endpointsPath(), { url });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error).toMatch(/^url/);
    expect(res.body.error).toContain(why === "private" ? "private" : why);
  });

  it("refuses a name that resolves to a private address (a resolver answer injected: real DNS is not reachable here)", async () => {
    const realPolicy = env.deps.webhookPolicy;
    env.deps.webhookPolicy = {
      allowLoopbackHttp: false,
      lookup: async (host) => (host === "internal.example.com" ? [{ address: "203.0.113.7", family: 4 }, { address: "10.1.2.3", family: 4 }] : []),
    };
    try {
      const res = await api(env, key, "POST", endpointsPath(), { url: "https://internal.example.com/hook" });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toBe("url's host internal.example.com resolves to 10.1.2.3 is a private, link-local or reserved address");
      // a PATCH to such a URL is refused the same way
      env.deps.webhookPolicy = { allowLoopbackHttp: false, lookup: async () => [{ address: "203.0.113.7", family: 4 }] };
      const created = await api(env, key, "POST", endpointsPath(), { url: "https://public.example.com/hook" });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      env.deps.webhookPolicy = { allowLoopbackHttp: false, lookup: async () => [{ address: "169.254.169.254", family: 4 }] };
      const patched = await api(env, key, "PATCH", `${endpointsPath()}/${created.body.webhook_endpoint.id}`, { url: "https://public.example.com/other" });
      expect(patched.status, JSON.stringify(patched.body)).toBe(400);
      expect(patched.body.error).toContain("the cloud metadata service");
    } finally {
      env.deps.webhookPolicy = realPolicy;
    }
  });

  it("classifies addresses", () => {
    expect(refusedAddress("8.8.8.8")).toBeUndefined();
    expect(refusedAddress("2606:4700::1111")).toBeUndefined();
    for (const a of ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "::", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "224.0.0.1"]) {
      expect(refusedAddress(a), a).toBeDefined();
    }
    // the local-stack setting lets loopback through, and nothing else
    expect(refusedAddress("127.0.0.1", { allowLoopbackHttp: true })).toBeUndefined();
    expect(refusedAddress("::1", { allowLoopbackHttp: true })).toBeUndefined();
    expect(refusedAddress("10.0.0.1", { allowLoopbackHttp: true })).toBeDefined();
    expect(refusedAddress("169.254.169.254", { allowLoopbackHttp: true })).toBeDefined();
  });
});

describe("at delivery time", () => {
  it("checks again and connects only to the address it checked: a DNS answer that changed (rebinding) is refused, no connection made", async () => {
    const tripwire = await startReceiver();
    const realPolicy = env.deps.webhookPolicy;
    try {
      // created while the name pointed at a public address...
      env.deps.webhookPolicy = { allowLoopbackHttp: false, lookup: async () => [{ address: "203.0.113.7", family: 4 }] };
      const { item } = await createEndpoint(env.deps, tenant.organizationId, { url: `https://rebind.example.com:${tripwire.port}/hook` });
      // ...delivered after it moved to loopback, where the tripwire listens
      env.deps.webhookPolicy = { allowLoopbackHttp: false, lookup: async () => [{ address: "127.0.0.1", family: 4 }] };
      const delivery = await createDelivery({ ...env.deps, deliveryQueueUrl: undefined }, item, testEvent(item, env.deps.now()));
      const outcome = await deliverMessage(env.deps, messageOf(delivery), { ...fastDelivery, backoffSeconds: [3600] });
      expect(outcome.status).toBe("retrying");
      const after = await getDelivery(env.deps, item.id, delivery.id);
      expect(after).toMatchObject({ state: "pending", attempts: 1, response_status: null });
      expect(after!.last_error).toBe("refused: url's host rebind.example.com resolves to 127.0.0.1 is a loopback address");
      expect(tripwire.connections).toBe(0);
    } finally {
      env.deps.webhookPolicy = realPolicy;
      await tripwire.close();
    }
  });

  it("connects to the address the check resolved, with the URL's name in the Host header", async () => {
    const receiver = await startReceiver();
    // Under the local-stack setting, a name that only the injected resolver knows reaches the loopback receiver.
    const local = { ...env.deps, webhookPolicy: { allowLoopbackHttp: true, lookup: async () => [{ address: "127.0.0.1", family: 4 }] } };
    try {
      const { item } = await createEndpoint(local, tenant.organizationId, { url: `http://receiver.example.test:${receiver.port}/in` });
      const delivery = await createDelivery({ ...local, deliveryQueueUrl: undefined }, item, testEvent(item, env.deps.now()));
      expect(await deliverMessage(local, messageOf(delivery), fastDelivery)).toMatchObject({ status: "delivered" });
      expect(receiver.requests).toHaveLength(1);
      expect(receiver.requests[0]!.headers.host).toBe(`receiver.example.test:${receiver.port}`);
      expect(receiver.requests[0]!.path).toBe("/in");
    } finally {
      await receiver.close();
    }
  });

  it("refuses a stored endpoint whose literal address is loopback (an endpoint from before a rule change)", async () => {
    const tripwire = await startReceiver();
    try {
      const { item } = await createEndpoint({ ...env.deps, webhookPolicy: { allowLoopbackHttp: true } }, tenant.organizationId, { url: `https://127.0.0.1:${tripwire.port}/hook` });
      const delivery = await createDelivery({ ...env.deps, deliveryQueueUrl: undefined }, item, testEvent(item, env.deps.now()));
      await deliverMessage(env.deps, messageOf(delivery), { ...fastDelivery, backoffSeconds: [3600] });
      expect((await getDelivery(env.deps, item.id, delivery.id))!.last_error).toBe("refused: url's host 127.0.0.1 is a loopback address");
      expect(tripwire.connections).toBe(0);
    } finally {
      await tripwire.close();
    }
  });

  it("does not follow a redirect (to a second receiver standing in for an internal address)", async () => {
    // The receiver itself is on loopback, so this one runs under the local-stack setting.
    const tripwire = await startReceiver();
    const receiver = await startReceiver((_r, _n, res) => {
      res.writeHead(302, { location: `http://127.0.0.1:${tripwire.port}/latest/meta-data/` }).end();
    });
    const local = { ...env.deps, webhookPolicy: { allowLoopbackHttp: true } };
    try {
      const { item } = await createEndpoint(local, tenant.organizationId, { url: receiver.url });
      const delivery = await createDelivery({ ...local, deliveryQueueUrl: undefined }, item, testEvent(item, env.deps.now()));
      await deliverMessage(local, messageOf(delivery), { ...fastDelivery, backoffSeconds: [3600] });
      const after = await getDelivery(env.deps, item.id, delivery.id);
      expect(after).toMatchObject({ state: "pending", attempts: 1, response_status: 302 });
      expect(after!.last_error).toContain("which is not followed");
      expect(receiver.requests).toHaveLength(1);
      expect(tripwire.connections).toBe(0);
      expect(tripwire.requests).toHaveLength(0);
    } finally {
      await receiver.close();
      await tripwire.close();
    }
  });

  it("fails a pending delivery of a deleted endpoint without sending it", async () => {
    const local = { ...env.deps, webhookPolicy: { allowLoopbackHttp: true } };
    const receiver = await startReceiver();
    try {
      const { item } = await createEndpoint(local, tenant.organizationId, { url: receiver.url });
      const delivery = await createDelivery({ ...local, deliveryQueueUrl: undefined }, item, testEvent(item, env.deps.now()));
      const del = await api(env, key, "DELETE", `${endpointsPath()}/${item.id}`);
      expect(del.status, JSON.stringify(del.body)).toBe(200);
      expect(await getEndpointItem(env.deps, tenant.organizationId, item.id)).toBeUndefined();
      expect(await deliverMessage(local, messageOf(delivery), fastDelivery)).toMatchObject({ status: "failed", reason: "the endpoint was deleted" });
      expect(await getDelivery(env.deps, item.id, delivery.id)).toMatchObject({ state: "failed", last_error: "the endpoint was deleted" });
      expect(receiver.requests).toHaveLength(0);
      // the deleted endpoint's history is not served
      const history = await api(env, key, "GET", `${endpointsPath()}/${item.id}/deliveries`);
      expect(history.status).toBe(404);
    } finally {
      await receiver.close();
    }
  });
});
