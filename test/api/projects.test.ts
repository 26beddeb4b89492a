import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { keys } from "../../core/db/keys.ts";
import { createProject, updateClusterSettings, updateProjectSettings } from "../../core/orgs/orgs.ts";
import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { securityMatrix } from "../support/security.ts";
import { body, expectShape } from "../support/spec.ts";

let env: TestEnv;
let tenant: Tenant;
let other: Tenant;
let siblingId: string;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "prj_db" });
  other = await env.seedTenant({ database: "prj_other" });
  siblingId = (
    await createProject(env.deps, {
      organization_id: tenant.organizationId,
      cluster_id: tenant.clusterId,
      name: uniq("Sibling.Shop"),
      database_name: "prj_sibling",
      environment: "non_production",
      postgres_version: "15",
    })
  ).id;
});
afterAll(async () => env?.cleanup());

const get = async (path: string, key: string) => {
  const res = await env.app().request(path, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: await body(res) };
};

describe("GET /v1/projects", () => {
  it("lists the organization's projects with exactly SPEC's fields; a project-scoped key sees its one project", async () => {
    const key = await tenant.key(["projects:read"]);
    const res = await get("/v1/projects", key);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body)).toEqual(["projects"]);
    const ids = res.body.projects.map((p: { id: string }) => p.id).sort();
    expect(ids).toEqual([tenant.projectId, siblingId].sort());
    for (const p of res.body.projects) expectShape("Project", p, expect);
    const sibling = res.body.projects.find((p: { id: string }) => p.id === siblingId);
    expect(sibling).toMatchObject({
      environment: "non_production",
      postgres_version: "15",
      state: "ready",
      database_name: "prj_sibling",
      organization_id: tenant.organizationId,
    });
    expect(sibling.slug).toMatch(/^sibling-shop-[a-z0-9-]+$/);

    const scoped = await tenant.key(["projects:read"], { projectId: tenant.projectId });
    const one = await get("/v1/projects", scoped);
    expect(one.status, JSON.stringify(one.body)).toBe(200);
    expect(one.body.projects.map((p: { id: string }) => p.id)).toEqual([tenant.projectId]);
  });

  it("never shows another organization's projects", async () => {
    const res = await get("/v1/projects", await other.key(["projects:read"]));
    expect(res.status).toBe(200);
    expect(res.body.projects.map((p: { id: string }) => p.id)).toEqual([other.projectId]);
  });

  it("needs projects:read (403) and a credential (401)", async () => {
    const res = await get("/v1/projects", await tenant.key(["backups:read", "backups:write", "jobs:read"]));
    expect(res.status, JSON.stringify(res.body)).toBe(403);
    expect(res.body.error).toMatch(/projects:read/);
    const anon = await env.app().request("/v1/projects");
    expect(anon.status).toBe(401);
  });
});

describe("the fields CapyDB's clients read", () => {
  it("answers the cluster's connection facts, documented defaults, the newest job; operators' settings win", async () => {
    const key = await tenant.key(["projects:read", "backups:write"]);
    const cluster = new URL(env.infra.postgresUrl);
    const before = (await get(`/v1/projects/${siblingId}`, key)).body.project;
    expect(before).toMatchObject({
      region: null,
      plan: "standard",
      always_on: true,
      runtime_status: "running",
      storage_limit_bytes: 0,
      max_connections: 100,
      direct_port: Number(cluster.port || 5432),
      pooled_port: Number(cluster.port || 5432), // no pooler: straight to the server
      public_host: cluster.hostname,
      latest_job_id: null,
      primary_instance_id: tenant.clusterId,
      last_error: null,
    });

    const backup = await body(await env.app().request(`/v1/projects/${siblingId}/backups`, { method: "POST", headers: { "x-api-key": key } }));
    await updateClusterSettings(env.deps, tenant.clusterId, { region: "eu-west-1", public_host: "db.example.test", pooler_port: 6432 });
    await updateProjectSettings(env.deps, siblingId, {
      plan: "scale",
      storage_limit_bytes: 10 * 2 ** 30,
      max_connections: 50,
      role_name: "shop_owner",
      statement_timeout: "30s",
    });
    const after = (await get(`/v1/projects/${siblingId}`, key)).body.project;
    expectShape("Project", after, expect);
    expect(after).toMatchObject({
      region: "eu-west-1",
      plan: "scale",
      storage_limit_bytes: 10 * 2 ** 30,
      max_connections: 50,
      role_name: "shop_owner",
      statement_timeout: "30s",
      public_host: "db.example.test",
      pooled_port: 6432,
      latest_job_id: backup.job.id,
    });
    expect(Date.parse(after.updated_at)).toBeGreaterThanOrEqual(Date.parse(before.updated_at));
    // null clears an operator's value: the cluster's answers again.
    await updateProjectSettings(env.deps, siblingId, { role_name: null });
    expect((await get(`/v1/projects/${siblingId}`, key)).body.project.role_name).toBeNull();
    await updateClusterSettings(env.deps, tenant.clusterId, { region: null, public_host: null, pooler_port: null });
  });

  it("a project stored before these fields existed still reads, with the same defaults", async () => {
    const id = "prj_01m8bbd943485gy3g6c722w2d5";
    await env.deps.ddb.send(
      new PutCommand({
        TableName: env.deps.table,
        Item: {
          ...keys.project(id),
          type: "project",
          id,
          organization_id: tenant.organizationId,
          cluster_id: tenant.clusterId,
          name: "Old One",
          database_name: "old_db",
          created_at: "2026-01-02T03:04:05Z",
          gsi1pk: keys.orgProjectsIndex(tenant.organizationId),
          gsi1sk: id,
        },
      }),
    );
    const res = await get(`/v1/projects/${id}`, await tenant.key(["projects:read"]));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expectShape("Project", res.body.project, expect);
    expect(res.body.project).toMatchObject({
      slug: "old-one",
      environment: "production",
      plan: "standard",
      always_on: true,
      max_connections: 100,
      updated_at: "2026-01-02T03:04:05Z",
    });
    expect(typeof res.body.project.direct_port).toBe("number");
  });

  it("capydb-admin's settings are validated by name", async () => {
    await expect(updateProjectSettings(env.deps, siblingId, { direct_port: 70000 })).rejects.toThrow(/direct_port/);
    await expect(updateProjectSettings(env.deps, siblingId, {})).rejects.toThrow(/nothing to change/);
    await expect(updateProjectSettings(env.deps, "prj_01m8bbd943485gy3g6c722w2d6", { plan: "x" })).rejects.toThrow(/does not exist/);
  });
});

describe("GET /v1/projects/{projectID}", () => {
  it("answers the project; defaults for a project created without environment are production", async () => {
    const res = await get(`/v1/projects/${tenant.projectId}`, await tenant.key(["projects:read"]));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body)).toEqual(["project"]);
    expectShape("Project", res.body.project, expect);
    expect(res.body.project).toMatchObject({ id: tenant.projectId, environment: "production", state: "ready", database_name: "prj_db" });
    expect(res.body.project.updated_at).toBe(res.body.project.created_at);
  });

  it("is 404 for another organization's project, a malformed id and an unknown one", async () => {
    const key = await tenant.key(["projects:read"]);
    for (const id of [other.projectId, "nope", "prj_01m8bbd943485gy3g6c722w2d4"]) {
      const res = await get(`/v1/projects/${id}`, key);
      expect(res.status, JSON.stringify(res.body)).toBe(404);
      expect(res.body).toEqual({ error: `project ${id} not found` });
    }
  });

  it("passes the security matrix", async () => {
    const key = await tenant.key();
    const jobOf = async (projectId: string) =>
      (await body(await env.app().request(`/v1/projects/${projectId}/backups`, { method: "POST", headers: { "x-api-key": key } }))).job.id as string;
    await securityMatrix(
      env,
      { name: "get project", method: "GET", path: (p) => `/v1/projects/${p}`, scope: "projects:read", ok: 200 },
      { tenant, sibling: { ...tenant, projectId: siblingId }, other, jobId: await jobOf(tenant.projectId), siblingJobId: await jobOf(siblingId) },
    );
  });
});
