import { api, createEndpointViaApi, createWebhookEnv, orgScopes, startReceiver, startWebhookLoops, type ReceivedRequest } from "../webhooks/support.ts";
import type { Tenant, TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listDeliveries } from "../../core/webhooks/deliveries.ts";
import { freePort } from "../../local/wait.ts";
import { waitFor } from "../worker/support.ts";

/** `capydb webhooks ...` as a customer runs it: a child process talking HTTP to this file's API. */
let env: TestEnv;
let tenant: Tenant;
let apiUrl: string;
let home: string;
let server: ServerType;
let key: string;

beforeAll(async () => {
  env = await createWebhookEnv();
  tenant = await env.seedTenant({ database: await env.createDatabase() });
  key = await tenant.key(orgScopes);
  const port = await freePort();
  await new Promise<void>((resolve) => (server = serve({ fetch: env.app().fetch, port, hostname: "127.0.0.1" }, () => resolve())));
  apiUrl = `http://127.0.0.1:${port}`;
  home = mkdtempSync(join(tmpdir(), "capydb-cli-"));
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  if (home) rmSync(home, { recursive: true, force: true });
  await env?.cleanup();
});

/** The receiver's own check of `X-CapyDB-Signature` (from the SPEC): some v1 matches the secret. */
function signedBy(secret: string, req: ReceivedRequest): boolean {
  const header = String(req.headers["x-capydb-signature"]);
  const t = /(?:^|,)t=(\d+)/.exec(header)?.[1];
  return header.split(",").includes(`v1=${createHmac("sha256", secret).update(`${t}.${req.body}`).digest("hex")}`);
}

type Run = { status: number | null; stdout: string; stderr: string };

function capydb(args: string[], opts: { key?: string; stdin?: string } = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CAPYDB_HOME: home,
    CAPYDB_API_URL: apiUrl,
    CAPYDB_API_KEY: opts.key ?? key,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "cli/capydb.ts", ...args], { env: childEnv, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(opts.stdin ?? "");
  });
}

async function ok(args: string[], opts: { key?: string; stdin?: string } = {}): Promise<Run> {
  const run = await capydb(args, opts);
  expect(run.status, `capydb ${args.join(" ")}\n${run.stderr}${run.stdout}`).toBe(0);
  return run;
}

describe("capydb webhooks", () => {
  it("create (secret shown once) and list", async () => {
    const receiver = await startReceiver();
    try {
      // create, as a person at a terminal would read it: the secret on stdout, once, never on stderr
      const created = await ok([
        "webhooks",
        "create",
        "--url",
        receiver.url,
        "--event",
        "backup.completed",
        "--event",
        "job.failed",
        "--description",
        "ci pipeline",
        "-o",
        "table",
      ]);
      const secret = /Signing secret:\s+(whsec_\S+)/.exec(created.stdout)?.[1];
      expect(secret, created.stdout).toBeDefined();
      const endpointId = /Endpoint:\s+(whe_\S+)/.exec(created.stdout)?.[1] ?? "";
      expect(created.stdout).toMatch(/Events:\s+backup\.completed, job\.failed/);
      expect(created.stderr).toContain("not shown again");
      expect(created.stderr).not.toContain(secret!);

      // list: the endpoint, its events and health; never a secret
      const list = await ok(["webhooks", "list", "-o", "table"]);
      expect(list.stdout).toMatch(/^ID\s+URL\s+EVENTS\s+ACTIVE\s+HEALTH\s+DESCRIPTION/);
      expect(list.stdout).toMatch(new RegExp(`${endpointId}\\s+\\S+\\s+backup\\.completed, job\\.failed\\s+yes\\s+healthy\\s+ci pipeline`));
      expect(list.stdout + list.stderr).not.toContain("whsec_");
      const listed = JSON.parse((await ok(["webhooks", "list", "-o", "json"])).stdout);
      const fromApi = await api(env, key, "GET", `/v1/organizations/${tenant.organizationId}/webhook-endpoints`);
      expect(listed).toEqual(fromApi.body); // -o json is the API's body, unchanged
    } finally {
      await receiver.close();
    }
  });

  it("update and delete", async () => {
    const receiver = await startReceiver();
    try {
      const { webhook_endpoint: endpoint } = await createEndpointViaApi(env, tenant, key, { url: receiver.url, event_types: ["job.failed"] });
      const endpointId = endpoint.id;
      // update: every event type, turned off; then on again
      const off = JSON.parse((await ok(["webhooks", "update", endpointId, "--all-events", "--disable", "-o", "json"])).stdout);
      expect(off.webhook_endpoint).toMatchObject({ id: endpointId, event_types: [], is_active: false, health: "disabled" });
      const on = await ok(["webhooks", "update", endpointId, "--enable", "--description", "ci"]);
      expect(JSON.parse(on.stdout).webhook_endpoint).toMatchObject({ is_active: true, health: "healthy", description: "ci" });

      // delete: gone, and asking for it again is exit 4 (not found), with what to check
      const deleted = await ok(["webhooks", "delete", endpointId, "-o", "table"]);
      expect(deleted.stderr).toContain(`Deleted webhook endpoint ${endpointId}`);
      const gone = await capydb(["webhooks", "get", endpointId]);
      expect(gone.status, gone.stderr).toBe(4);
      expect(gone.stderr).toContain("capydb webhooks list");
    } finally {
      await receiver.close();
    }
  });

  it("test, deliveries, redeliver and rotate-secret, against a real receiver", async () => {
    const receiver = await startReceiver();
    const loops = startWebhookLoops(env);
    try {
      const { webhook_endpoint: endpoint, plaintext_secret: secret } = await createEndpointViaApi(env, tenant, key, { url: receiver.url });
      const endpointId = endpoint.id;

      // test: a webhook.test delivery reaches the receiver, and `capydb webhooks verify` accepts its signature with the secret create printed
      const test = JSON.parse((await ok(["webhooks", "test", endpointId, "-o", "json"])).stdout);
      expect(test.delivery).toMatchObject({ endpoint_id: endpointId, event_type: "webhook.test", state: "pending" });
      await waitFor("the test delivery to arrive", async () => receiver.requests.length >= 1 || undefined, 30_000);
      const [got] = receiver.requests;
      expect(got!.headers["x-capydb-delivery"]).toBe(test.delivery.id);
      const verified = await ok(["webhooks", "verify", "--header", String(got!.headers["x-capydb-signature"]), "--secret", secret], { stdin: got!.body });
      expect(verified.stdout).toMatch(/^valid: signed at /);

      // deliveries: the history says delivered, with the receiver's answer
      await waitFor(
        "the delivery to be recorded as delivered",
        async () => (await listDeliveries(env.deps, endpointId, 5)).items[0]?.state === "delivered" || undefined,
        30_000,
      );
      const history = await ok(["webhooks", "deliveries", endpointId, "-o", "table"]);
      expect(history.stdout).toMatch(/^ID\s+EVENT\s+STATE\s+ATTEMPTS\s+RESPONSE\s+CREATED\s+ERROR/);
      expect(history.stdout).toMatch(new RegExp(`${test.delivery.id}\\s+webhook\\.test\\s+delivered\\s+1/8\\s+200`));

      // redeliver: a new delivery of the same event, which the receiver gets too
      const again = JSON.parse((await ok(["webhooks", "redeliver", endpointId, test.delivery.id, "-o", "json"])).stdout);
      expect(again.delivery.id).not.toBe(test.delivery.id);
      expect(again.delivery.payload.id).toBe(test.delivery.payload.id);
      await waitFor("the redelivery to arrive", async () => receiver.requests.length >= 2 || undefined, 30_000);
      expect(receiver.requests[1]!.headers["x-capydb-delivery"]).toBe(again.delivery.id);
      expect(JSON.parse(receiver.requests[1]!.body).id).toBe(test.delivery.payload.id);

      // rotate-secret: a new secret, printed once; both sign during the overlap
      const rotated = await ok(["webhooks", "rotate-secret", endpointId, "-o", "table"]);
      const newSecret = /Signing secret:\s+(whsec_\S+)/.exec(rotated.stdout)?.[1];
      expect(newSecret).toBeDefined();
      expect(newSecret).not.toBe(secret);
      expect(rotated.stdout).not.toContain(secret);
      expect(rotated.stderr).not.toContain(newSecret!);
      expect((await api(env, key, "POST", `/v1/organizations/${tenant.organizationId}/webhook-endpoints/${endpointId}/test`)).status).toBe(202);
      await waitFor("the delivery after rotation", async () => receiver.requests.length >= 3 || undefined, 30_000);
      const third = receiver.requests[2]!;
      for (const s of [secret, newSecret!]) expect(signedBy(s, third), s === secret ? "the old secret" : "the new secret").toBe(true);
    } finally {
      await loops.stop();
      await receiver.close();
    }
  });

  it("refuses bad input with exit 2, a key without the scope with 3, another organization's endpoint with 4", async () => {
    const privateUrl = await capydb(["webhooks", "create", "--url", "https://10.0.0.1/hooks"]);
    expect(privateUrl.status, privateUrl.stderr).toBe(2);
    expect(privateUrl.stderr).toMatch(/^capydb: .*10\.0\.0\.1.*\(HTTP 400\)/);
    const badEvent = await capydb(["webhooks", "create", "--url", "https://example.com/hooks", "--event", "backup.done"]);
    expect(badEvent.status).toBe(2);
    expect(badEvent.stderr).toContain("unknown event type 'backup.done'");
    const nothing = await capydb(["webhooks", "update", "whe_01jz0000000000000000000000"]);
    expect(nothing.status).toBe(2);
    expect(nothing.stderr).toContain("nothing to change");

    const reader = await tenant.key(["organizations:read"]);
    const refused = await capydb(["webhooks", "create", "--url", "https://example.com/hooks"], { key: reader });
    expect(refused.status, refused.stderr).toBe(3);
    expect((await capydb(["webhooks", "list"], { key: reader })).status).toBe(0);

    const other = await env.seedTenant({ database: await env.createDatabase() });
    const otherOrg = await capydb(["webhooks", "list", "--org", other.organizationId]);
    expect(otherOrg.status, otherOrg.stderr).toBe(4);
    const missing = await capydb(["webhooks", "deliveries", "whe_01jz0000000000000000000000"]);
    expect(missing.status, missing.stderr).toBe(4);
  });
});
