import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../core/db/keys.ts";
import { updateOrganizationSettings } from "../../core/orgs/orgs.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { body, expectShape } from "../support/spec.ts";

let env: TestEnv;
let tenant: Tenant;
let other: Tenant;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "org_db" });
  other = await env.seedTenant({ database: "org_other" });
});
afterAll(async () => env?.cleanup());

const get = async (path: string, key?: string) => {
  const res = await env.app().request(path, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  return { status: res.status, body: await body(res) };
};

describe("GET /v1/organizations/{orgID}", () => {
  it("answers the caller's organization with exactly the contract's fields, as /v1/me does", async () => {
    const key = await tenant.key(["organizations:read"]);
    const res = await get(`/v1/organizations/${tenant.organizationId}`, key);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body)).toEqual(["organization"]);
    expectShape("Organization", res.body.organization, expect);
    expect(res.body.organization).toMatchObject({
      id: tenant.organizationId,
      billing_plan: "standard",
      billing_status: "active",
      billing_provider: "manual",
      clerk_organization_id: null,
      clerk_organization_slug: null,
      suspended_at: null,
    });
    expect(res.body.organization.slug).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
    const me = await get("/v1/me", key);
    expect(me.body.organization).toEqual(res.body.organization);
  });

  it("shows what an operator recorded (capydb-admin org set)", async () => {
    await updateOrganizationSettings(env.deps, tenant.organizationId, {
      billing_plan: "enterprise",
      billing_provider: "stripe",
      suspended_at: "2026-12-01T00:00:00Z",
    });
    const res = await get(`/v1/organizations/${tenant.organizationId}`, await tenant.key(["organizations:read"]));
    expect(res.body.organization).toMatchObject({
      billing_plan: "enterprise",
      billing_status: "active",
      billing_provider: "stripe",
      suspended_at: "2026-12-01T00:00:00Z",
    });
    expect(res.body.organization.updated_at >= res.body.organization.created_at).toBe(true);
    await updateOrganizationSettings(env.deps, tenant.organizationId, { billing_plan: "standard", billing_provider: "manual", suspended_at: null });
  });

  it("is 404 for another organization and unknown ids, 403 without organizations:read, 401 without a credential", async () => {
    const key = await tenant.key(["organizations:read"]);
    for (const id of [other.organizationId, "org_01m8bbd943485gy3g6c722w2d4", "nope"]) {
      const res = await get(`/v1/organizations/${id}`, key);
      expect(res.status, JSON.stringify(res.body)).toBe(404);
      expect(res.body.error).toMatch(/not found/);
    }
    const noScope = await get(`/v1/organizations/${tenant.organizationId}`, await tenant.key(["projects:read"]));
    expect(noScope.status, JSON.stringify(noScope.body)).toBe(403);
    expect(noScope.body.error).toMatch(/organizations:read/);
    expect((await get(`/v1/organizations/${tenant.organizationId}`)).status).toBe(401);
  });

  it("an organization stored before the billing fields existed reads with the documented defaults", async () => {
    const id = "org_01m8bbd943485gy3g6c722w2d7";
    await env.deps.ddb.send(
      new PutCommand({
        TableName: env.deps.table,
        Item: { ...keys.organization(id), type: "organization", id, name: "Old Org", clerk_organization_id: null, created_at: "2026-01-02T03:04:05Z" },
      }),
    );
    const { getOrganization, toOrganization } = await import("../../core/orgs/orgs.ts");
    const org = toOrganization((await getOrganization(env.deps, id))!);
    expectShape("Organization", org, expect);
    expect(org).toMatchObject({
      slug: "old-org",
      billing_plan: "standard",
      billing_status: "active",
      billing_provider: "manual",
      updated_at: "2026-01-02T03:04:05Z",
    });
  });
});
