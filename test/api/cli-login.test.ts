import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POLL_LIMIT } from "../../core/auth/cli-login.ts";
import { listApiKeys } from "../../core/auth/keys.ts";
import { keys } from "../../core/db/keys.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { body } from "../support/spec.ts";

/** SPEC section 6's field sets, written out independently of the code's schemas. */
const sessionFields = ["session_id", "poll_token", "state", "expires_at", "verification_url"];
const pollFields = ["session_id", "state", "expires_at", "plaintext_api_key"];

let env: TestEnv;
let tenant: Tenant;
let skewMs = 0;

beforeAll(async () => {
  env = await createTestEnv({ now: () => new Date(Date.now() + skewMs) });
  tenant = await env.seedTenant({ database: "cli_login_db" });
});
afterAll(async () => env?.cleanup());

const call = async (method: string, path: string, opts: { key?: string; token?: string; json?: unknown } = {}) => {
  const headers: Record<string, string> = {};
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  if (opts.token) headers["x-capydb-poll-token"] = opts.token;
  if (opts.json !== undefined) headers["content-type"] = "application/json";
  const res = await env
    .app()
    .request(`http://api.example.test${path}`, { method, headers, body: opts.json === undefined ? undefined : JSON.stringify(opts.json) });
  return { status: res.status, headers: res.headers, body: await body(res) };
};
const start = async (device = "laptop of Ada") => {
  const res = await call("POST", "/v1/cli/login/sessions", { json: { device_name: device, source: "cli" } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { session_id: string; poll_token: string; expires_at: string; verification_url: string };
};
const poll = (s: { session_id: string; poll_token: string }) => call("GET", `/v1/cli/login/sessions/${s.session_id}`, { token: s.poll_token });

describe("CLI device login", () => {
  it("pending until a person approves; then the first poll gets a new cli key, exactly once", async () => {
    const s = await start();
    expect(Object.keys(s).sort()).toEqual([...sessionFields].sort());
    expect(s).toMatchObject({
      session_id: expect.stringMatching(/^cli_/),
      state: "pending",
      verification_url: `http://api.example.test/console/cli-login/${s.session_id}`,
    });
    const minutes = (Date.parse(s.expires_at) - Date.now()) / 60_000;
    expect(minutes).toBeGreaterThan(5);
    expect(minutes).toBeLessThanOrEqual(10);

    const pending = await poll(s);
    expect(pending.status, JSON.stringify(pending.body)).toBe(200);
    expect(Object.keys(pending.body).sort()).toEqual([...pollFields].sort());
    expect(pending.body).toMatchObject({ state: "pending", plaintext_api_key: null });

    // The approver sees the device and the scopes; a member key grants only what it holds.
    const approver = await tenant.key(["backups:read", "jobs:read", "projects:read", "api_keys:write"]);
    const seen = await call("GET", `/v1/cli/login/sessions/${s.session_id}/approval`, { key: approver });
    expect(seen.status, JSON.stringify(seen.body)).toBe(200);
    expect(seen.body.login).toMatchObject({
      device_name: "laptop of Ada",
      source: "cli",
      state: "pending",
      granted_scopes: ["backups:read", "jobs:read", "projects:read"],
    });
    expect(seen.body.login.requested_scopes).toContain("backups:write");

    const ok = await call("POST", `/v1/cli/login/sessions/${s.session_id}/approve`, { key: approver });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const again = await call("POST", `/v1/cli/login/sessions/${s.session_id}/approve`, { key: approver });
    expect(again.status).toBe(409);

    const done = await poll(s);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body).toMatchObject({ state: "completed", plaintext_api_key: expect.stringMatching(/^capy_live_/) });
    const later = await poll(s);
    expect(later.body).toMatchObject({ state: "completed", plaintext_api_key: null });

    // A key like any other: it works, it is listed with source cli and the device's name, it revokes.
    const key = done.body.plaintext_api_key as string;
    const me = await call("GET", "/v1/me", { key });
    expect(me.status, JSON.stringify(me.body)).toBe(200);
    expect(me.body.principal).toMatchObject({ organization_id: tenant.organizationId, scopes: ["backups:read", "jobs:read", "projects:read"] });
    const record = (await listApiKeys(env.deps, tenant.organizationId)).find((k) => k.key_prefix === key.slice(0, k.key_prefix.length));
    expect(record).toMatchObject({ source: "cli", name: "laptop of Ada" });
    const revoked = await call("DELETE", `/v1/organizations/${tenant.organizationId}/api-keys/${record!.id}`, {
      key: await tenant.key(["api_keys:write", "backups:read", "jobs:read", "projects:read"]),
    });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);

    // Nothing secret at rest: the poll token is stored as its hash only.
    const item = (await env.deps.ddb.send(new GetCommand({ TableName: env.deps.table, Key: keys.cliLogin(s.session_id) }))).Item!;
    expect(JSON.stringify(item)).not.toContain(s.poll_token);
    expect(JSON.stringify(item)).not.toContain(key);
  });

  it("a denied login says so and never makes a key; an expired one says expired", async () => {
    const s = await start("build box");
    const key = await tenant.key(["backups:read"]);
    const denied = await call("POST", `/v1/cli/login/sessions/${s.session_id}/deny`, { key });
    expect(denied.status, JSON.stringify(denied.body)).toBe(200);
    expect((await poll(s)).body).toMatchObject({ state: "denied", plaintext_api_key: null });
    expect((await call("POST", `/v1/cli/login/sessions/${s.session_id}/approve`, { key })).status).toBe(409);

    const late = await start("slow laptop");
    skewMs = 11 * 60_000;
    try {
      expect((await poll(late)).body).toMatchObject({ state: "expired", plaintext_api_key: null });
      const approve = await call("POST", `/v1/cli/login/sessions/${late.session_id}/approve`, { key });
      expect(approve.status).toBe(409);
      expect(approve.body.error).toMatch(/expired/);
    } finally {
      skewMs = 0;
    }
  });

  it("refuses a wrong or missing poll token, bad bodies, approvals without a credential, and fast polling", async () => {
    const s = await start("fast poller");
    expect((await poll({ ...s, poll_token: "cpt_wrong" })).status).toBe(404);
    const none = await call("GET", `/v1/cli/login/sessions/${s.session_id}`);
    expect(none.status).toBe(401);
    expect(none.body.error).toMatch(/X-CapyDB-Poll-Token/);
    expect((await call("GET", `/v1/cli/login/sessions/${s.session_id}?poll_token=${s.poll_token}`)).status).toBe(200);
    expect((await call("GET", "/v1/cli/login/sessions/cli_01m8bbd943485gy3g6c722w2d4", { token: s.poll_token })).status).toBe(404);

    const bad = await call("POST", "/v1/cli/login/sessions", { json: { device_name: "", source: "cli" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/device_name/);
    expect((await call("POST", "/v1/cli/login/sessions", { json: { device_name: "x", source: "robot" } })).status).toBe(400);
    expect((await call("POST", `/v1/cli/login/sessions/${s.session_id}/approve`)).status).toBe(401);

    // A burst well over the limit at once (a loaded machine must not spread it over windows).
    const burst = await Promise.all(Array.from({ length: POLL_LIMIT.perWindow * 2 + 5 }, () => poll(s)));
    const limited = burst.filter((r) => r.status === 429);
    expect(limited.length, JSON.stringify(burst.map((r) => r.status))).toBeGreaterThan(0);
    expect(burst.filter((r) => r.status === 200).length).toBeLessThanOrEqual(POLL_LIMIT.perWindow * 2);
    expect(limited[0]!.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(limited[0]!.body.error).toMatch(/polling too fast/);
  });
});
