import { createWebhookEnv, api, fastDelivery, orgScopes, startReceiver } from "./support.ts";
import type { TestEnv, Tenant } from "../support/env.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deliverMessage } from "../../core/webhooks/deliver.ts";
import { createDelivery, getDelivery, messageOf, testEvent } from "../../core/webhooks/deliveries.ts";
import { createEndpoint, getEndpointItem } from "../../core/webhooks/endpoints.ts";
import { refusedAddress } from "../../core/webhooks/destination.ts";
import { postWebhook } from "../../core/webhooks/http.ts";

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
      lookup: async (host) =>
        host === "internal.example.com"
          ? [
              { address: "93.184.215.14", family: 4 },
              { address: "10.1.2.3", family: 4 },
            ]
          : [],
    };
    try {
      const res = await api(env, key, "POST", endpointsPath(), { url: "https://internal.example.com/hook" });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toBe(
        "url's host internal.example.com resolves to 10.1.2.3 is a private, link-local or reserved address (private-use, 10.0.0.0/8)",
      );
      // a PATCH to such a URL is refused the same way
      env.deps.webhookPolicy = { allowLoopbackHttp: false, lookup: async () => [{ address: "93.184.215.14", family: 4 }] };
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
    for (const a of [
      "127.0.0.1",
      "10.0.0.1",
      "172.16.5.4",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "::",
      "fe80::1",
      "fc00::1",
      "::ffff:10.0.0.1",
      "64:ff9b::a00:1",
      "224.0.0.1",
    ]) {
      expect(refusedAddress(a), a).toBeDefined();
    }
    // the local-stack setting lets loopback through, and nothing else
    expect(refusedAddress("127.0.0.1", { allowLoopbackHttp: true })).toBeUndefined();
    expect(refusedAddress("::1", { allowLoopbackHttp: true })).toBeUndefined();
    expect(refusedAddress("10.0.0.1", { allowLoopbackHttp: true })).toBeDefined();
    expect(refusedAddress("169.254.169.254", { allowLoopbackHttp: true })).toBeDefined();
  });
});

/**
 * Every entry of the IANA IPv4 and IPv6 Special-Purpose Address Registries (as of 2025), written
 * out here independently of the implementation's table, with the deprecated IPv6 ranges and
 * multicast. Each is checked at its first and last address.
 */
const ianaIpv4: [string, string, string][] = [
  ["0.0.0.0/8", "0.0.0.0", "0.255.255.255"],
  ["0.0.0.0/32", "0.0.0.0", "0.0.0.0"],
  ["10.0.0.0/8", "10.0.0.0", "10.255.255.255"],
  ["100.64.0.0/10", "100.64.0.0", "100.127.255.255"],
  ["127.0.0.0/8", "127.0.0.0", "127.255.255.255"],
  ["169.254.0.0/16", "169.254.0.0", "169.254.255.255"],
  ["172.16.0.0/12", "172.16.0.0", "172.31.255.255"],
  ["192.0.0.0/24", "192.0.0.0", "192.0.0.255"],
  ["192.0.0.0/29", "192.0.0.0", "192.0.0.7"],
  ["192.0.0.8/32", "192.0.0.8", "192.0.0.8"],
  ["192.0.0.9/32", "192.0.0.9", "192.0.0.9"],
  ["192.0.0.10/32", "192.0.0.10", "192.0.0.10"],
  ["192.0.0.170/32", "192.0.0.170", "192.0.0.170"],
  ["192.0.0.171/32", "192.0.0.171", "192.0.0.171"],
  ["192.0.2.0/24", "192.0.2.0", "192.0.2.255"],
  ["192.31.196.0/24", "192.31.196.0", "192.31.196.255"],
  ["192.52.193.0/24", "192.52.193.0", "192.52.193.255"],
  ["192.88.99.0/24", "192.88.99.0", "192.88.99.255"],
  ["192.168.0.0/16", "192.168.0.0", "192.168.255.255"],
  ["192.175.48.0/24", "192.175.48.0", "192.175.48.255"],
  ["198.18.0.0/15", "198.18.0.0", "198.19.255.255"],
  ["198.51.100.0/24", "198.51.100.0", "198.51.100.255"],
  ["203.0.113.0/24", "203.0.113.0", "203.0.113.255"],
  ["224.0.0.0/4 (multicast)", "224.0.0.0", "239.255.255.255"],
  ["240.0.0.0/4", "240.0.0.0", "255.255.255.254"],
  ["255.255.255.255/32", "255.255.255.255", "255.255.255.255"],
];
const ianaIpv6: [string, string, string][] = [
  ["::1/128", "::1", "::1"],
  ["::/128", "::", "::"],
  ["::ffff:0:0/96 (IPv4-mapped)", "::ffff:0.0.0.0", "::ffff:0.255.255.255"],
  ["64:ff9b::/96 (NAT64, carrying a private IPv4)", "64:ff9b::10.0.0.0", "64:ff9b::169.254.169.254"],
  ["64:ff9b:1::/48 (local-use NAT64)", "64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff"],
  ["100::/64", "100::", "100::ffff:ffff:ffff:ffff"],
  ["100:0:0:1::/64", "100:0:0:1::", "100:0:0:1:ffff:ffff:ffff:ffff"],
  ["2001::/23", "2001::", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["2001::/32 (Teredo)", "2001::", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["2001:1::1/128", "2001:1::1", "2001:1::1"],
  ["2001:1::2/128", "2001:1::2", "2001:1::2"],
  ["2001:1::3/128", "2001:1::3", "2001:1::3"],
  ["2001:2::/48", "2001:2::", "2001:2:0:ffff:ffff:ffff:ffff:ffff"],
  ["2001:3::/32", "2001:3::", "2001:3:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["2001:4:112::/48", "2001:4:112::", "2001:4:112:ffff:ffff:ffff:ffff:ffff"],
  ["2001:10::/28", "2001:10::", "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["2001:20::/28", "2001:20::", "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["2001:30::/28", "2001:30::", "2001:3f:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["2001:db8::/32", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["2002::/16 (6to4)", "2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["2620:4f:8000::/48", "2620:4f:8000::", "2620:4f:8000:ffff:ffff:ffff:ffff:ffff"],
  ["3fff::/20", "3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["5f00::/16", "5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["fc00::/7", "fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["fe80::/10", "fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["fec0::/10 (site-local, deprecated)", "fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
  ["::/96 (IPv4-compatible, deprecated)", "::2", "::255.255.255.255"],
  ["::ffff:0:0:0/96 (SIIT, deprecated)", "::ffff:0:0.0.0.0", "::ffff:0:255.255.255.255"],
  ["ff00::/8 (multicast)", "ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
];

describe("every special-purpose range is refused", () => {
  it.each([...ianaIpv4, ...ianaIpv6])("%s", (_range, first, last) => {
    for (const a of [first, last]) {
      expect(refusedAddress(a), a).toMatch(/is (a private, link-local or reserved address|a loopback address|the cloud metadata service|the .* form of)/);
    }
  });

  it("accepts public addresses, and the IPv4-carrying forms of a public IPv4", () => {
    for (const a of ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700::1111", "2a00:1450:4001:82a::200e", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8"]) {
      expect(refusedAddress(a), a).toBeUndefined();
    }
  });

  it("names the IPv4 a transition form carries", () => {
    expect(refusedAddress("64:ff9b:1::a9fe:a9fe")).toBe(
      "64:ff9b:1::a9fe:a9fe is a private, link-local or reserved address (local-use IPv4/IPv6 translation (NAT64), 64:ff9b:1::/48), carrying 169.254.169.254, the cloud metadata service",
    );
    expect(refusedAddress("2002:a9fe:a9fe::")).toContain("(6to4, 2002::/16), carrying 169.254.169.254, the cloud metadata service");
    expect(refusedAddress("2002:7f00:1::")).toContain("carrying 127.0.0.1, a loopback address");
    expect(refusedAddress("::ffff:0:a9fe:a9fe")).toContain("(SIIT IPv4-translated (deprecated), ::ffff:0:0:0/96), carrying 169.254.169.254");
    // Teredo: server 65.54.227.120, client 10.0.0.1 stored with every bit inverted (f5ff:fffe)
    expect(refusedAddress("2001:0:4136:e378:8000:63bf:f5ff:fffe")).toContain("(Teredo, 2001::/32), carrying 10.0.0.1");
    expect(refusedAddress("64:ff9b::a9fe:a9fe")).toBe("64:ff9b::a9fe:a9fe is the well-known NAT64 form of 169.254.169.254, the cloud metadata service");
  });

  it.each([
    "https://[64:ff9b:1::a9fe:a9fe]/hook",
    "https://[2002:a9fe:a9fe::]/hook",
    "https://[2002:7f00:1::]/hook",
    "https://[::ffff:0:a9fe:a9fe]/hook",
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",
    "https://[fec0::1]/hook",
    "https://192.0.2.10/hook",
  ])("the API refuses %s", async (url) => {
    const res = await api(env, key, "POST", endpointsPath(), { url });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error).toMatch(/^url's host .* is a private, link-local or reserved address/);
  });
});

describe("at delivery time", () => {
  it("checks again and connects only to the address it checked: a DNS answer that changed (rebinding) is refused, no connection made", async () => {
    const tripwire = await startReceiver();
    const realPolicy = env.deps.webhookPolicy;
    try {
      // created while the name pointed at a public address...
      env.deps.webhookPolicy = { allowLoopbackHttp: false, lookup: async () => [{ address: "93.184.215.14", family: 4 }] };
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

  it("checks the address the socket actually connected to: a refused peer gets no request, not even the headers", async () => {
    // Whatever handed it the address (here the caller itself, as a resolver answer that changed would), the
    // connection to a loopback tripwire is cut before anything is written.
    const tripwire = await startReceiver();
    try {
      const res = await postWebhook({
        url: new URL(`http://hooks.example.com:${tripwire.port}/hook`),
        address: "127.0.0.1",
        family: 4,
        policy: { allowLoopbackHttp: false },
        headers: { "content-type": "application/json" },
        body: "{}",
        timeoutMs: 2_000,
        maxResponseBytes: 1024,
      });
      expect(res).toMatchObject({ ok: false, status: null, error: "refused: the connection went to 127.0.0.1 is a loopback address" });
      await new Promise((r) => setTimeout(r, 100));
      expect(tripwire.requests).toHaveLength(0);
    } finally {
      await tripwire.close();
    }
  });

  it("refuses a stored endpoint whose literal address is loopback (an endpoint from before a rule change)", async () => {
    const tripwire = await startReceiver();
    try {
      const { item } = await createEndpoint({ ...env.deps, webhookPolicy: { allowLoopbackHttp: true } }, tenant.organizationId, {
        url: `https://127.0.0.1:${tripwire.port}/hook`,
      });
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
