import { expect } from "vitest";
import { createApiKey, generateApiKey, revokeApiKey } from "../../core/auth/keys.ts";
import type { Scope } from "../../core/auth/scopes.ts";
import type { Tenant, TestEnv } from "./env.ts";
import { body } from "./spec.ts";

export interface Endpoint {
  name: string;
  method: string;
  /** Path for a project (and a job of that project, for job routes). */
  path(projectId: string, jobId: string): string;
  /** null: any valid credential may call it (`GET /v1/me`). */
  scope: Scope | null;
  body?: unknown;
  /** Status of a successful call. */
  ok: number;
  /**
   * False for a scope a project-scoped key can never hold (projects:write is an organization
   * scope, SPEC 3): the project-scoped checks are skipped.
   */
  projectScoped?: boolean;
  /**
   * "caller": the route shows the caller's own view (`/v1/me`, `/v1/projects`), so another
   * organization's key succeeds too (seeing its own). Default "resource": addressed by a
   * project, job, preview or organization, which another organization's key cannot see (404).
   */
  tenancy?: "resource" | "caller";
  /**
   * Only an organization admin's signed-in session may succeed: every API key, even one with the
   * scope on its own project, is a 403. `admin` is a session token of the tenant's organization
   * (expects `ok`), `foreignAdmin` one of another organization (expects 404).
   */
  sessionOnly?: { admin(): Promise<string>; foreignAdmin(): Promise<string> };
}

/** What the matrix calls: the test env's app, or one of the caller's (e.g. with Clerk configured). */
type Requester = { request(path: string, init: RequestInit): Response | Promise<Response> };

/**
 * The security matrix every route runs: missing, malformed, unknown, revoked and expired
 * credentials are 401; a key without the scope is 403; another organization's key and a
 * project-scoped key on a sibling project are 404; the right key succeeds.
 */
export async function securityMatrix(
  env: TestEnv,
  endpoint: Endpoint,
  fixtures: { tenant: Tenant; sibling: Tenant; other: Tenant; jobId: string; siblingJobId: string; app?: () => Requester },
) {
  const { tenant, sibling, other } = fixtures;
  const app = fixtures.app ?? (() => env.app());
  const call = (headers: Record<string, string>, projectId = tenant.projectId, jobId = fixtures.jobId) =>
    app().request(endpoint.path(projectId, jobId), {
      method: endpoint.method,
      headers: { ...(endpoint.body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
      body: endpoint.body !== undefined ? JSON.stringify(endpoint.body) : undefined,
    });
  const expectStatus = async (res: Response, status: number, what: string) => {
    const b = await body(res);
    expect(res.status, `${endpoint.name}: ${what}: ${JSON.stringify(b)}`).toBe(status);
    if (status >= 400) expect(Object.keys(b), `${endpoint.name}: ${what}`).toEqual(["error"]);
  };

  await expectStatus(await call({}), 401, "no credential");
  const malformed: Record<string, string>[] = [
    { authorization: "Bearer" },
    { authorization: "Basic dXNlcjpwYXNz" },
    { authorization: "Bearer capy_live_short" },
    { authorization: "Bearer not-a-key-at-all" },
    { "x-api-key": "capy_live_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" },
    { "x-api-key": "" },
  ];
  for (const h of malformed) {
    await expectStatus(await call(h), 401, `malformed ${JSON.stringify(h)}`);
  }
  await expectStatus(await call({ authorization: `Bearer ${generateApiKey()}` }), 401, "unknown key");

  // A key needs a scope: a route that needs none gets one it does not use.
  const scopes: Scope[] = [endpoint.scope ?? "jobs:read"];
  const revoked = await createApiKey(env.deps, { organization_id: tenant.organizationId, name: "revoked", scopes });
  await revokeApiKey(env.deps, tenant.organizationId, revoked.record.id);
  await expectStatus(await call({ authorization: `Bearer ${revoked.key}` }), 401, "revoked key");

  const past = new Date(Date.now() - 3 * 3600_000);
  const expired = await createApiKey(
    { ...env.deps, now: () => past },
    { organization_id: tenant.organizationId, name: "expired", scopes, expires_at: new Date(past.getTime() + 3600_000).toISOString() },
  );
  await expectStatus(await call({ "x-api-key": expired.key }), 401, "expired key");

  if (endpoint.scope !== null) {
    const allButScope = (["backups:read", "backups:write", "jobs:read", "projects:read"] as Scope[]).filter((s) => s !== endpoint.scope);
    await expectStatus(await call({ authorization: `Bearer ${await tenant.key(allButScope)}` }), 403, "key without the scope");
  }

  // An API key that passes every other check still cannot call a session-only route.
  const keyOk = endpoint.sessionOnly ? 403 : endpoint.ok;
  const caller = endpoint.tenancy === "caller";
  await expectStatus(await call({ authorization: `Bearer ${await other.key(scopes)}` }), caller ? keyOk : 404, "key of another organization");

  if (endpoint.projectScoped !== false) {
    const scoped = await tenant.key(scopes, { projectId: tenant.projectId });
    if (!caller)
      await expectStatus(
        await call({ authorization: `Bearer ${scoped}` }, sibling.projectId, fixtures.siblingJobId),
        404,
        "project-scoped key on a sibling project",
      );
    await expectStatus(await call({ authorization: `Bearer ${scoped}` }), keyOk, "project-scoped key on its project");
  }
  await expectStatus(await call({ authorization: `Bearer ${await tenant.key(scopes)}` }), keyOk, "org key with the scope");

  if (endpoint.sessionOnly) {
    await expectStatus(await call({ authorization: `Bearer ${await endpoint.sessionOnly.foreignAdmin()}` }), 404, "another organization's admin session");
    await expectStatus(await call({ authorization: `Bearer ${await endpoint.sessionOnly.admin()}` }), endpoint.ok, "the organization's admin session");
  }
}
