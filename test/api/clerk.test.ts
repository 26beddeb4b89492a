import { generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { startFakeClerk } from "../support/clerk.ts";
import { body, expectShape } from "../support/spec.ts";
import { allScopes } from "../../core/auth/scopes.ts";

let env: TestEnv;
let clerk: Awaited<ReturnType<typeof startFakeClerk>>;
let tenant: Tenant;
let other: Tenant;
const clerkOrg = uniq("org_clerk");
const otherClerkOrg = uniq("org_clerk_other");
let app: ReturnType<TestEnv["app"]>;
let jobId: string;

beforeAll(async () => {
  env = await createTestEnv();
  clerk = await startFakeClerk();
  const seed = (clerkId: string, db: string) => env.seedTenant({ database: db, clerkOrganizationId: clerkId });
  tenant = await seed(clerkOrg, "clerk_db");
  other = await seed(otherClerkOrg, "clerk_other_db");
  app = env.app({ clerk: clerk.config });
  const res = await app.request(`/v1/projects/${tenant.projectId}/backups`, {
    method: "POST",
    headers: { authorization: `Bearer ${await clerk.member(clerkOrg)}` },
  });
  jobId = (await body(res)).job.id;
});
afterAll(async () => {
  await clerk?.stop();
  await env?.cleanup();
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe("Clerk session tokens", () => {
  it("let a member list backups and see who they are", async () => {
    const token = await clerk.member(clerkOrg);
    const res = await app.request(`/v1/projects/${tenant.projectId}/backups`, { headers: bearer(token) });
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await body(res)).backups).toHaveLength(1);
    const me = await body(await app.request("/v1/me", { headers: bearer(token) }));
    expect(me).toEqual({
      principal: {
        auth_source: "clerk_session",
        organization_id: tenant.organizationId,
        project_id: null,
        scopes: expect.arrayContaining(["backups:read", "backups:write", "jobs:read"]),
        user_id: "user_2abc",
        is_admin: false,
      },
      organization: expect.objectContaining({
        id: tenant.organizationId,
        name: expect.any(String),
        slug: expect.stringMatching(/^[a-z0-9]+(-[a-z0-9]+)*$/),
        billing_plan: "standard",
      }),
    });
    expectShape("Organization", me.organization, expect);
    expect(me.principal.scopes).not.toContain("api_keys:write");
  });

  it("let an admin (v2 claims) create a key that then works; a member cannot", async () => {
    const admin = await clerk.admin(clerkOrg);
    const created = await app.request(`/v1/organizations/${tenant.organizationId}/api-keys`, {
      method: "POST",
      headers: { ...bearer(admin), "content-type": "application/json" },
      body: JSON.stringify({ name: "ci", scopes: ["backups:read"] }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const { key, api_key } = await body(created);
    expect(api_key).toMatchObject({ name: "ci", is_active: true, organization_id: tenant.organizationId });
    const res = await app.request(`/v1/projects/${tenant.projectId}/backups`, { headers: { "x-api-key": key } });
    expect(res.status).toBe(200);

    const member = await app.request(`/v1/organizations/${tenant.organizationId}/api-keys`, {
      method: "POST",
      headers: { ...bearer(await clerk.member(clerkOrg)), "content-type": "application/json" },
      body: JSON.stringify({ name: "nope", scopes: ["backups:read"] }),
    });
    expect(member.status).toBe(403);
  });

  it.each([
    ["expired", () => clerk.sign({ org_id: clerkOrg }, { exp: Math.floor(Date.now() / 1000) - 120 })],
    ["not yet valid", () => clerk.sign({ org_id: clerkOrg }, { nbf: Math.floor(Date.now() / 1000) + 120 })],
    ["wrong issuer", () => clerk.sign({ org_id: clerkOrg, iss: "https://evil.example" })],
    ["wrong azp", () => clerk.sign({ org_id: clerkOrg, azp: "https://evil.example" })],
    ["without azp (authorized parties configured)", () => clerk.sign({ org_id: clerkOrg, azp: undefined })],
    ["with an empty azp", () => clerk.sign({ org_id: clerkOrg, azp: "" })],
    ["unknown kid", () => clerk.sign({ org_id: clerkOrg }, { kid: "not-a-known-kid" })],
    [
      "bad signature",
      async () => {
        const { privateKey } = await generateKeyPair("RS256");
        return clerk.sign({ org_id: clerkOrg }, { key: privateKey });
      },
    ],
    ["alg none", async () => clerk.unsigned(clerkOrg)],
    ["HS256 signed with the public key", async () => clerk.hs256WithPublicKey(clerkOrg)],
    ["garbage", async () => "a.b.c"],
  ])("refuse a token that is %s with 401", async (_what, make) => {
    const res = await app.request(`/v1/projects/${tenant.projectId}/backups`, { headers: bearer(await make()) });
    expect(res.status, await res.clone().text()).toBe(401);
    expect(Object.keys(await body(res))).toEqual(["error"]);
  });

  it("name the missing azp in the 401, and accept a token without azp where no authorized party is configured", async () => {
    const token = await clerk.sign({ org_id: clerkOrg, org_role: "org:member", azp: undefined });
    const refused = await app.request("/v1/me", { headers: bearer(token) });
    expect(refused.status).toBe(401);
    expect((await body(refused)).error).toBe("the session token is not valid (no azp claim: an authorized party is required)");
    const open = env.app({ clerk: { ...clerk.config, authorizedParties: [] } });
    const res = await open.request("/v1/me", { headers: bearer(token) });
    expect(res.status, await res.clone().text()).toBe(200);
  });

  it("answer 403 to a token with no active organization, or one that maps to none", async () => {
    const none = await app.request("/v1/me", { headers: bearer(await clerk.sign({})) });
    expect(none.status).toBe(403);
    expect((await body(none)).error).toMatch(/no active organization/);
    const unmapped = await app.request("/v1/me", { headers: bearer(await clerk.member("org_unknown_to_capydb")) });
    expect(unmapped.status).toBe(403);
    expect((await body(unmapped)).error).toMatch(/not a CapyDB organization/);
  });

  it("are refused (401) when Clerk is not configured", async () => {
    const plain = env.app();
    const res = await plain.request("/v1/me", { headers: bearer(await clerk.member(clerkOrg)) });
    expect(res.status).toBe(401);
  });

  it("pass the security matrix: own organization ok, another organization 404, expired 401, on every endpoint", async () => {
    const member = await clerk.member(clerkOrg);
    const outsider = await clerk.member(otherClerkOrg);
    const expired = await clerk.sign({ org_id: clerkOrg }, { exp: Math.floor(Date.now() / 1000) - 120 });
    const endpoints: [string, string, unknown, number][] = [
      ["GET", `/v1/projects/${tenant.projectId}/scheduled-backups`, undefined, 200],
      ["PUT", `/v1/projects/${tenant.projectId}/scheduled-backups/default`, { cron_hour: 1, cron_minute: 1, is_active: true }, 200],
      ["GET", `/v1/projects/${tenant.projectId}/backups`, undefined, 200],
      ["POST", `/v1/projects/${tenant.projectId}/backups`, {}, 202],
      ["GET", `/v1/projects/${tenant.projectId}/jobs`, undefined, 200],
      ["GET", `/v1/jobs/${jobId}`, undefined, 200],
    ];
    for (const [method, path, payload, ok] of endpoints) {
      const call = (token: string) =>
        app.request(path, {
          method,
          headers: { ...bearer(token), ...(payload ? { "content-type": "application/json" } : {}) },
          body: payload ? JSON.stringify(payload) : undefined,
        });
      expect((await call(member)).status, `${method} ${path} member`).toBe(ok);
      expect((await call(outsider)).status, `${method} ${path} other org`).toBe(404);
      expect((await call(expired)).status, `${method} ${path} expired`).toBe(401);
    }
    expect(other.organizationId).not.toBe(tenant.organizationId);
  });
});

describe("API key management", () => {
  let adminKey: string;
  beforeAll(async () => {
    adminKey = await tenant.key(["api_keys:read", "api_keys:write", "backups:read", "jobs:read"]);
  });
  const keysPath = () => `/v1/organizations/${tenant.organizationId}/api-keys`;
  const create = (payload: unknown, key = adminKey) =>
    app.request(keysPath(), { method: "POST", headers: { "x-api-key": key, "content-type": "application/json" }, body: JSON.stringify(payload) });

  it("creates (plaintext once), lists (never the plaintext) and revokes keys", async () => {
    const res = await create({ name: "deploy-bot", scopes: ["backups:read"], expires_at: new Date(Date.now() + 86400_000).toISOString() });
    expect(res.status, await res.clone().text()).toBe(201);
    const { key, api_key, plaintext_api_key } = await body(res);
    expect(plaintext_api_key, "the plaintext also under the name CapyDB's clients read").toBe(key);
    expect(Object.keys(api_key).sort()).toEqual(
      [
        "id",
        "name",
        "key_prefix",
        "organization_id",
        "project_id",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "is_active",
        "source",
      ].sort(),
    );
    expect(api_key.source).toBe("api");
    expect(key.startsWith(api_key.key_prefix)).toBe(true);
    await app.request(`/v1/projects/${tenant.projectId}/backups`, { headers: { "x-api-key": key } });

    const list = await app.request(keysPath(), { headers: { "x-api-key": adminKey } });
    const text = await list.text();
    expect(list.status).toBe(200);
    expect(text).not.toContain(key);
    const listed = JSON.parse(text).api_keys.find((k: { id: string }) => k.id === api_key.id);
    expect(listed.last_used_at).not.toBeNull();

    const revoke = await app.request(`${keysPath()}/${api_key.id}`, { method: "DELETE", headers: { "x-api-key": adminKey } });
    expect(revoke.status).toBe(200);
    expect((await body(revoke)).api_key).toMatchObject({ id: api_key.id, is_active: false });
    // This instance forgets the key at once (others within the cache window).
    const after = await app.request(`/v1/projects/${tenant.projectId}/backups`, { headers: { "x-api-key": key } });
    expect(after.status).toBe(401);
    const again = await app.request(`${keysPath()}/${api_key.id}`, { method: "DELETE", headers: { "x-api-key": adminKey } });
    expect(again.status).toBe(200);
  });

  it("refuses org scopes on a project-scoped key (400) and scopes the creator lacks (403)", async () => {
    const scoped = await create({ name: "x", scopes: ["backups:read", "api_keys:read"], project_id: tenant.projectId });
    expect(scoped.status).toBe(400);
    expect((await body(scoped)).error).toMatch(/organization scopes/);
    const escalate = await create({ name: "x", scopes: ["backups:write"] });
    expect(escalate.status).toBe(403);
    expect((await body(escalate)).error).toMatch(/lack: backups:write/);
  });

  it("needs the api_keys scopes, and answers 404 for another organization and unknown keys", async () => {
    const reader = await tenant.key(["backups:read"]);
    expect((await app.request(keysPath(), { headers: { "x-api-key": reader } })).status).toBe(403);
    expect((await create({ name: "x", scopes: ["backups:read"] }, reader)).status).toBe(403);
    const otherKeys = `/v1/organizations/${other.organizationId}/api-keys`;
    expect((await app.request(otherKeys, { headers: { "x-api-key": adminKey } })).status).toBe(404);
    expect((await app.request(`${keysPath()}/key_01m8bbd9ce6mpdt0y4c1nmnfae`, { method: "DELETE", headers: { "x-api-key": adminKey } })).status).toBe(404);
    const bad = await create({ name: "", scopes: [] });
    expect(bad.status).toBe(400);
  });

  it("lets a key revoke only keys whose scopes it holds; an organization admin's session revokes any", async () => {
    const full = await tenant.key([...allScopes]);
    const me = (await body(await app.request("/v1/me", { headers: { "x-api-key": full } }))).principal;
    const listed = (await body(await app.request(keysPath(), { headers: { "x-api-key": adminKey } }))).api_keys as { id: string; key_prefix: string }[];
    const fullRecord = listed.find((k) => full.startsWith(k.key_prefix))!;
    expect(me.scopes).toHaveLength(allScopes.length);
    const keyManager = await tenant.key(["api_keys:read", "api_keys:write"]);

    const refused = await app.request(`${keysPath()}/${fullRecord.id}`, { method: "DELETE", headers: { "x-api-key": keyManager } });
    expect(refused.status, await refused.clone().text()).toBe(403);
    expect((await body(refused)).error).toMatch(/^cannot revoke a key with scopes you lack: .*backups:write/);
    expect((await app.request(`/v1/projects/${tenant.projectId}/backups`, { headers: { "x-api-key": full } })).status, "the full key still works").toBe(200);

    // A key within the revoker's scopes may go.
    const small = await body(await create({ name: "small", scopes: ["api_keys:read"] }, keyManager));
    const ok = await app.request(`${keysPath()}/${small.api_key.id}`, { method: "DELETE", headers: { "x-api-key": keyManager } });
    expect(ok.status, await ok.clone().text()).toBe(200);

    const admin = await app.request(`${keysPath()}/${fullRecord.id}`, { method: "DELETE", headers: bearer(await clerk.admin(clerkOrg)) });
    expect(admin.status, await admin.clone().text()).toBe(200);
    expect((await body(admin)).api_key).toMatchObject({ id: fullRecord.id, is_active: false });
  });

  it("answers /v1/me for an API key", async () => {
    const scoped = await tenant.key(["backups:read"], { projectId: tenant.projectId });
    const me = await body(await app.request("/v1/me", { headers: { "x-api-key": scoped } }));
    expect(me).toEqual({
      principal: {
        auth_source: "api_key",
        organization_id: tenant.organizationId,
        project_id: tenant.projectId,
        scopes: ["backups:read"],
        user_id: null,
        is_admin: false,
      },
      organization: expect.objectContaining({
        id: tenant.organizationId,
        name: expect.any(String),
        slug: expect.stringMatching(/^[a-z0-9]+(-[a-z0-9]+)*$/),
        billing_plan: "standard",
      }),
    });
    expect((await app.request("/v1/me")).status).toBe(401);
  });
});
