import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTable } from "../support/outage.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { body, specFields } from "../support/spec.ts";
import { ApiKeyResolver } from "../../core/auth/resolve.ts";
import { createApiKey, revokeApiKey } from "../../core/auth/keys.ts";
import { PUBLIC_ROUTES, scopeAccess } from "../../core/api/auth.ts";

let env: TestEnv;
let tenant: Tenant;
let key: string;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "app_db" });
  key = await tenant.key();
});
afterAll(async () => env?.cleanup());

describe("GET /v1/openapi.json", () => {
  it("is OpenAPI 3.1 with the four component schemas carrying exactly SPEC's fields, and both security schemes", async () => {
    const res = await env.app().request("/v1/openapi.json");
    expect(res.status).toBe(200);
    const doc = await body(res);
    expect(doc.openapi).toBe("3.1.0");
    const schemas = doc.components.schemas;
    for (const name of [
      "ScheduledBackup",
      "Backup",
      "Job",
      "Download",
      "Project",
      "Approval",
      "AuditEvent",
      "Export",
      "Preview",
      "RestorePoint",
      "Connections",
      "Organization",
    ] as const) {
      expect(Object.keys(schemas[name].properties).sort(), name).toEqual([...specFields[name]].sort());
      expect([...schemas[name].required].sort(), name).toEqual([...specFields[name]].sort());
    }
    expect(Object.keys(schemas.Error.properties)).toEqual(["error"]);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.components.securitySchemes.apiKeyAuth).toMatchObject({ type: "apiKey", in: "header", name: "X-API-Key" });
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        "/v1/jobs/{jobID}",
        "/v1/me",
        "/v1/organizations/{orgID}",
        "/v1/cli/login/sessions",
        "/v1/cli/login/sessions/{sessionID}",
        "/v1/cli/login/sessions/{sessionID}/approval",
        "/v1/cli/login/sessions/{sessionID}/approve",
        "/v1/cli/login/sessions/{sessionID}/deny",
        "/v1/organizations/{orgID}/api-keys",
        "/v1/organizations/{orgID}/api-keys/{keyID}",
        "/v1/organizations/{orgID}/audit-events",
        "/v1/projects/{projectID}/approvals",
        "/v1/projects/{projectID}/audit-events",
        "/v1/projects",
        "/v1/projects/{projectID}",
        "/v1/projects/{projectID}/preview-databases",
        "/v1/preview-databases/{previewID}",
        "/v1/preview-databases/{previewID}/reset",
        "/v1/preview-databases/{previewID}/extend",
        "/v1/preview-databases/{previewID}/promote",
        "/v1/preview-databases/{previewID}/connections",
        "/v1/projects/{projectID}/restores",
        "/v1/projects/{projectID}/restore-points",
        "/v1/projects/{projectID}/restore-points/{restorePointID}",
        "/v1/projects/{projectID}/pitr",
        "/v1/projects/{projectID}/backups",
        "/v1/projects/{projectID}/backups/{backupID}/download",
        "/v1/projects/{projectID}/exports",
        "/v1/projects/{projectID}/exports/{exportID}/download",
        "/v1/projects/{projectID}/jobs",
        "/v1/projects/{projectID}/scheduled-backups",
        "/v1/projects/{projectID}/scheduled-backups/default",
        "/v1/organizations/{orgID}/webhook-endpoints",
        "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}",
        "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}/rotate-secret",
        "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}/test",
        "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}/deliveries",
        "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}/deliveries/{deliveryID}/redeliver",
      ].sort(),
    );
    expect(Object.keys(doc.paths["/v1/projects/{projectID}/backups"]).sort()).toEqual(["get", "post"]);
    expect(doc.paths["/v1/projects/{projectID}/backups"].post.responses["202"]).toBeDefined();
  });
});

describe("envelope and routing", () => {
  it("answers unknown routes 404 and a wrong method on a known path 405, both as {error}", async () => {
    const unknown = await env.app().request("/v1/nothing-here", { headers: { "x-api-key": key } });
    expect(unknown.status).toBe(404);
    expect(await body(unknown)).toEqual({ error: expect.any(String) });
    const wrong = await env.app().request(`/v1/projects/${tenant.projectId}/backups`, { method: "DELETE", headers: { "x-api-key": key } });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toMatch(/GET/);
    expect(await body(wrong)).toEqual({ error: expect.stringMatching(/not allowed/) });
  });

  it("gives every response an x-request-id, echoing a sane incoming one", async () => {
    const a = await env.app().request("/v1/openapi.json");
    expect(a.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const b = await env.app().request(`/v1/projects/${tenant.projectId}/backups`, { headers: { "x-request-id": "trace-123", "x-api-key": key } });
    expect(b.headers.get("x-request-id")).toBe("trace-123");
    const c = await env.app().request("/v1/nothing", { headers: { "x-request-id": "bad id with spaces" } });
    expect(c.headers.get("x-request-id")).not.toBe("bad id with spaces");
  });

  it("answers 500 with a plain message and no stack trace when something unexpected breaks", async () => {
    const broken = env.app({ deps: { ...env.deps, table: "" } });
    const res = await broken.request(`/v1/projects/${tenant.projectId}/backups`, { headers: { "x-api-key": key } });
    const b = await body(res);
    expect(res.status, JSON.stringify(b)).toBe(500);
    expect(b).toEqual({ error: "internal error" });
  });
});

describe("DynamoDB outage", () => {
  it("answers 503 with Retry-After (not 500) when DynamoDB is down", async () => {
    const outage = await createTable(env);
    try {
      const app = env.app({ deps: { ...env.deps, ddb: outage.ddb, table: outage.table } });
      const tenantKey = await outage.seedKey(tenant);
      const ok = await app.request(`/v1/projects/${outage.projectId}/backups`, { headers: { "x-api-key": tenantKey } });
      expect(ok.status, await ok.clone().text()).toBe(200);
      await outage.stop();
      const down = await app.request(`/v1/projects/${outage.projectId}/backups`, { headers: { "x-api-key": tenantKey } });
      expect(down.status, await down.clone().text()).toBe(503);
      expect(down.headers.get("retry-after")).toBeTruthy();
      expect(await body(down)).toEqual({ error: expect.stringMatching(/unavailable/) });
      const post = await app.request(`/v1/projects/${outage.projectId}/backups`, { method: "POST", headers: { "x-api-key": tenantKey } });
      expect(post.status).toBe(503);
    } finally {
      await outage.stop();
    }
  });
});

describe("API key cache", () => {
  it("stops accepting a revoked key once the cache window has passed", async () => {
    let now = new Date();
    const deps = { ...env.deps, now: () => now };
    const { key: k, record } = await createApiKey(deps, { organization_id: tenant.organizationId, name: "cached", scopes: ["backups:read"] });
    const resolver = new ApiKeyResolver(deps, 60_000);
    await expect(resolver.resolve(k)).resolves.toMatchObject({ organization_id: tenant.organizationId });
    await revokeApiKey(deps, tenant.organizationId, record.id);
    // Within the window the cached resolution still stands; past it, the revocation is seen.
    now = new Date(now.getTime() + 59_000);
    await expect(resolver.resolve(k)).resolves.toBeDefined();
    now = new Date(now.getTime() + 2_000);
    await expect(resolver.resolve(k)).rejects.toMatchObject({ code: "unauthorized" });
  });

  it("shares one lookup between concurrent requests with the same key", async () => {
    const { key: k } = await createApiKey(env.deps, { organization_id: tenant.organizationId, name: "burst", scopes: ["backups:read"] });
    let reads = 0;
    const ddb = Object.create(env.deps.ddb) as typeof env.deps.ddb;
    ddb.send = ((cmd: { constructor: { name: string } }, ...rest: unknown[]) => {
      if (cmd.constructor.name === "GetCommand") reads++;
      return (env.deps.ddb.send as (...a: unknown[]) => unknown).call(env.deps.ddb, cmd, ...rest);
    }) as typeof ddb.send;
    const resolver = new ApiKeyResolver({ ...env.deps, ddb }, 60_000);
    const all = await Promise.all(Array.from({ length: 20 }, () => resolver.resolve(k)));
    expect(new Set(all.map((p) => p.organization_id))).toEqual(new Set([tenant.organizationId]));
    expect(reads).toBe(1);
  });
});

describe("/v1 is closed by default", () => {
  it("a path under a prefix no route serves asks for a credential first (401), then is a 404", async () => {
    const app = env.app();
    const anon = await app.request("/v1/brand-new-prefix/things");
    expect(anon.status, JSON.stringify(await body(anon))).toBe(401);
    const keyed = await app.request("/v1/brand-new-prefix/things", { headers: { "x-api-key": key } });
    expect(keyed.status, JSON.stringify(await body(keyed))).toBe(404);
  });

  it("a route added without declaring its access is refused to every caller and its handler never runs; declaring one serves it", async () => {
    const app = env.app();
    let ran = 0;
    const handler = (c: Context) => {
      ran++;
      return c.json({ secret: "for nobody" }, 200);
    };
    // What a newcomer might write: a route with no access middleware, by the OpenAPI helper and by plain Hono.
    app.openapi(createRoute({ method: "get", path: "/v1/widgets", responses: { 200: { description: "widgets" } } }), handler);
    app.get("/v1/gadgets/:id", handler);
    app.openapi(
      createRoute({
        method: "get",
        path: "/v1/declared",
        middleware: [scopeAccess("projects:read")] as const,
        responses: { 200: { description: "declared" } },
      }),
      handler,
    );
    const admin = await tenant.key(["backups:read", "backups:write", "jobs:read", "projects:read", "projects:write", "organizations:read", "api_keys:read"]);
    for (const path of ["/v1/widgets", "/v1/gadgets/1"]) {
      const anon = await app.request(path);
      expect(anon.status, JSON.stringify(await body(anon))).toBe(401);
      const res = await app.request(path, { headers: { "x-api-key": admin } });
      const b = await body(res);
      expect(res.status, JSON.stringify(b)).toBe(403);
      expect(b).toEqual({ error: "this route declares no access rule" });
    }
    expect(ran).toBe(0);

    expect((await app.request("/v1/declared", { headers: { "x-api-key": key } })).status).toBe(403);
    const ok = await app.request("/v1/declared", { headers: { "x-api-key": admin } });
    expect(ok.status, JSON.stringify(await body(ok))).toBe(200);
    expect(ran).toBe(1);
  });

  it("the public list is short: the OpenAPI document and the CLI's device login (start, and poll with its token)", async () => {
    expect(PUBLIC_ROUTES).toEqual(["GET /v1/openapi.json", "POST /v1/cli/login/sessions", "GET /v1/cli/login/sessions/:sessionID"]);
    expect((await env.app().request("/v1/openapi.json")).status).toBe(200);
    // Deciding a login is not public: it needs a signed-in person.
    expect((await env.app().request("/v1/cli/login/sessions/cli_01m8bbd943485gy3g6c722w2d4/approve", { method: "POST" })).status).toBe(401);
  });
});
