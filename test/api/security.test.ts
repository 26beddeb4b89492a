import { afterAll, beforeAll, describe, it } from "vitest";
import { createProject } from "../../core/orgs/orgs.ts";
import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { securityMatrix, type Endpoint } from "../support/security.ts";
import { body } from "../support/spec.ts";

let env: TestEnv;
let fixtures: { tenant: Tenant; sibling: Tenant; other: Tenant; jobId: string; siblingJobId: string };

beforeAll(async () => {
  env = await createTestEnv();
  const tenant = await env.seedTenant({ database: "sec_db" });
  // A sibling project in the same organization, on the same cluster.
  const siblingProject = await createProject(env.deps, {
    organization_id: tenant.organizationId,
    cluster_id: tenant.clusterId,
    name: uniq("sibling"),
    database_name: "sec_sibling",
  });
  const sibling: Tenant = { ...tenant, projectId: siblingProject.id, database: "sec_sibling" };
  const other = await env.seedTenant({ database: "sec_other" });
  const key = await tenant.key();
  const post = async (projectId: string) =>
    (await body(await env.app().request(`/v1/projects/${projectId}/backups`, { method: "POST", headers: { "x-api-key": key } }))).job.id as string;
  fixtures = { tenant, sibling, other, jobId: await post(tenant.projectId), siblingJobId: await post(sibling.projectId) };
});
afterAll(async () => env?.cleanup());

const endpoints: Endpoint[] = [
  { name: "list schedules", method: "GET", path: (p) => `/v1/projects/${p}/scheduled-backups`, scope: "backups:read", ok: 200 },
  {
    name: "put schedule",
    method: "PUT",
    path: (p) => `/v1/projects/${p}/scheduled-backups/default`,
    scope: "backups:write",
    body: { cron_hour: 1, cron_minute: 2, is_active: true },
    ok: 200,
  },
  { name: "list backups", method: "GET", path: (p) => `/v1/projects/${p}/backups`, scope: "backups:read", ok: 200 },
  { name: "create backup", method: "POST", path: (p) => `/v1/projects/${p}/backups`, scope: "backups:write", body: {}, ok: 202 },
  { name: "list jobs", method: "GET", path: (p) => `/v1/projects/${p}/jobs`, scope: "jobs:read", ok: 200 },
  { name: "get job", method: "GET", path: (_p, j) => `/v1/jobs/${j}`, scope: "jobs:read", ok: 200 },
];

describe("security matrix", () => {
  it.each(endpoints.map((e) => [e.name, e] as const))("%s", async (_name, endpoint) => {
    await securityMatrix(env, endpoint, fixtures);
  });
});
