import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { DeleteQueueCommand } from "@aws-sdk/client-sqs";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "vitest";
import type { Scope } from "../../core/auth/scopes.ts";
import type { DeliveryOptions } from "../../core/webhooks/deliver.ts";
import { createDeliveryHandler } from "../../core/webhooks/handler.ts";
import { relayEvents } from "../../core/webhooks/relay.ts";
import { ensureQueues } from "../../local/resources.ts";
import { startTicker, startWorkerLoop } from "../../local/loops.ts";
import { uniq } from "../support/env.ts";

/** Seconds instead of hours: a short timeout, one-second backoffs without jitter. */
export const fastDelivery: Partial<DeliveryOptions> = {
  timeoutMs: 2_000,
  backoffSeconds: [1, 1, 1, 1, 1, 1, 1],
  jitterFraction: 0,
  slotBusyDelaySeconds: 1,
};

export const orgScopes: Scope[] = ["organizations:read", "organizations:write", "backups:read", "backups:write", "jobs:read"];

/** A test env with a webhook deliveries queue of its own; loopback receivers allowed unless `strict`. */
export async function createWebhookEnv(opts: { strict?: boolean } = {}): Promise<TestEnv & { deliveryDlqUrl: string }> {
  const env = await createTestEnv();
  const { queueUrl, dlqUrl } = await ensureQueues(env.deps.sqs, uniq("wh"), { visibilityTimeoutSeconds: 30 });
  env.deps.deliveryQueueUrl = queueUrl;
  env.deps.webhookPolicy = { allowLoopbackHttp: !opts.strict };
  const cleanup = env.cleanup;
  return Object.assign(env, {
    deliveryDlqUrl: dlqUrl,
    async cleanup() {
      await env.deps.sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
      await env.deps.sqs.send(new DeleteQueueCommand({ QueueUrl: dlqUrl })).catch(() => undefined);
      await cleanup();
    },
  });
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A real HTTP receiver on 127.0.0.1, started by the test. `respond` decides each answer (default
 * 200); returning "hang" never answers.
 */
export async function startReceiver(
  // A respond that answers on `res` itself returns nothing: void is that callback's return, not a value.
  // biome-ignore lint/suspicious/noConfusingVoidType: see above
  respond: (req: ReceivedRequest, n: number, res: ServerResponse) => number | "hang" | void = () => 200,
): Promise<{ url: string; port: number; requests: ReceivedRequest[]; connections: number; close(): Promise<void> }> {
  const requests: ReceivedRequest[] = [];
  const hung: ServerResponse[] = [];
  const state = { connections: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const r = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      requests.push(r);
      const answer = respond(r, requests.length, res);
      if (answer === "hang") return void hung.push(res);
      if (res.headersSent || res.writableEnded) return;
      res.writeHead(answer ?? 200, { "content-type": "text/plain" }).end(answer === undefined || answer < 300 ? "ok" : `status ${answer}`);
    });
  });
  server.on("connection", () => state.connections++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    requests,
    get connections() {
      return state.connections;
    },
    async close() {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The relay (every 300 ms) and the deliveries loop, as `npm start` runs them; stop() ends both. */
export function startWebhookLoops(env: TestEnv, options: Partial<DeliveryOptions> = fastDelivery) {
  const relay = startTicker(env.deps, () => relayEvents(env.deps), 300, "webhook relay");
  const loop = startWorkerLoop(env.deps, createDeliveryHandler(env.deps, options), {
    queueUrl: env.deps.deliveryQueueUrl,
    name: "webhook-deliveries",
    concurrency: 2,
    batchSize: 10,
    waitSeconds: 1,
  });
  return {
    async stop() {
      await relay.stop();
      await loop.stop();
    },
  };
}

export async function api(env: TestEnv, key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await env.app().request(path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** Creates an endpoint through the API; returns it with its plaintext secret. */
export async function createEndpointViaApi(env: TestEnv, tenant: Tenant, key: string, body: Record<string, unknown>) {
  const res = await api(env, key, "POST", `/v1/organizations/${tenant.organizationId}/webhook-endpoints`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { webhook_endpoint: { id: string; [k: string]: unknown }; plaintext_secret: string };
}
