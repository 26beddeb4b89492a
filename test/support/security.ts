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
  scope: Scope;
  body?: unknown;
  /** Status of a successful call. */
  ok: number;
  /**
   * False for a scope a project-scoped key can never hold (projects:write is an organization
   * scope, SPEC 3): the project-scoped checks are skipped.
   */
  projectScoped?: boolean;
}

/**
 * The security matrix every route runs: missing, malformed, unknown, revoked and expired
 * credentials are 401; a key without the scope is 403; another organization's key and a
 * project-scoped key on a sibling project are 404; the right key succeeds.
 */
export async function securityMatrix(env: TestEnv, endpoint: Endpoint, fixtures: { tenant: Tenant; sibling: Tenant; other: Tenant; jobId: string; siblingJobId: string }) {
  const { tenant, sibling, other } = fixtures;
  const call = (headers: Record<string, string>, projectId = tenant.projectId, jobId = fixtures.jobId) =>
    env.app().request(endpoint.path(projectId, jobId), {
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

  const revoked = await createApiKey(env.deps, { organization_id: tenant.organizationId, name: "revoked", scopes: [endpoint.scope] });
  await revokeApiKey(env.deps, tenant.organizationId, revoked.record.id);
  await expectStatus(await call({ authorization: `Bearer ${revoked.key}` }), 401, "revoked key");

  const past = new Date(Date.now() - 3 * 3600_000);
  const expired = await createApiKey(
    { ...env.deps, now: () => past },
    { organization_id: tenant.organizationId, name: "expired", scopes: [endpoint.scope], expires_at: new Date(past.getTime() + 3600_000).toISOString() },
  );
  await expectStatus(await call({ "x-api-key": expired.key }), 401, "expired key");

  const allButScope = (["backups:read", "backups:write", "jobs:read", "projects:read"] as Scope[]).filter((s) => s !== endpoint.scope);
  await expectStatus(await call({ authorization: `Bearer ${await tenant.key(allButScope)}` }), 403, "key without the scope");

  await expectStatus(await call({ authorization: `Bearer ${await other.key([endpoint.scope])}` }), 404, "key of another organization");

  if (endpoint.projectScoped === false) {
    await expectStatus(await call({ authorization: `Bearer ${await tenant.key([endpoint.scope])}` }), endpoint.ok, "org key with the scope");
    return;
  }
  const scoped = await tenant.key([endpoint.scope], { projectId: tenant.projectId });
  await expectStatus(await call({ authorization: `Bearer ${scoped}` }, sibling.projectId, fixtures.siblingJobId), 404, "project-scoped key on a sibling project");
  await expectStatus(await call({ authorization: `Bearer ${scoped}` }), endpoint.ok, "project-scoped key on its project");
  await expectStatus(await call({ authorization: `Bearer ${await tenant.key([endpoint.scope])}` }), endpoint.ok, "org key with the scope");
}
