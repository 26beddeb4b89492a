import { createWebhookEnv } from "../webhooks/support.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../core/db/keys.ts";
import { getExport, markExportCompleted, updateExportArtifact } from "../../core/exports/exports.ts";
import type { BackupItem } from "../../core/backups/backups.ts";
import { createApproval } from "../../core/approvals/approvals.ts";
import { createProject } from "../../core/orgs/orgs.ts";
import { createPreview, markPreviewReady } from "../../core/previews/previews.ts";
import { fakeBackup } from "../support/fake-backup.ts";
import type { Scope } from "../../core/auth/scopes.ts";
import { startFakeClerk } from "../support/clerk.ts";
import { uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { securityMatrix, type Endpoint } from "../support/security.ts";
import { PUBLIC_ROUTES } from "../../core/api/auth.ts";
import { body } from "../support/spec.ts";

/**
 * The security matrix on every route of the API (test/support/security.ts): credentials, scope,
 * tenancy. The last test lists the app's routes and fails for any route without an entry here,
 * so a new route cannot ship without its matrix.
 */
let env: TestEnv;
let clerk: Awaited<ReturnType<typeof startFakeClerk>>;
let fixtures: Parameters<typeof securityMatrix>[2];
const clerkOrg = uniq("org_clerk_sec");
const otherClerkOrg = uniq("org_clerk_sec_other");
const allScopes: Scope[] = [
  "backups:read",
  "backups:write",
  "jobs:read",
  "projects:read",
  "projects:write",
  "credentials:read",
  "organizations:read",
  "organizations:write",
  "api_keys:read",
  "api_keys:write",
];

/** Per project (tenant's and sibling's): the resources the routes address. */
const backupOf = new Map<string, BackupItem>();
const exportOf = new Map<string, string>();
const previewOf = new Map<string, string>();
const pointOf = new Map<string, string>();
/** Made just before the route that consumes them (see `prepare`). */
const made: {
  previewToPromote?: string;
  promoteToken?: string;
  previewToReset?: string;
  previewToDelete?: string;
  keyToRevoke?: string;
  endpoint?: string;
  endpointToDelete?: string;
  delivery?: string;
} = {};

const call = async (key: string, method: string, path: string, payload?: unknown) => {
  const res = await fixtures.app!().request(path, {
    method,
    headers: { "x-api-key": key, ...(payload !== undefined ? { "content-type": "application/json" } : {}) },
    body: payload !== undefined ? JSON.stringify(payload) : undefined,
  });
  const b = await body(res);
  expect(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(b)}`).toBe(true);
  return b;
};
const adminKey = () => fixtures.tenant.key(allScopes);

/** A completed export (its job is not run: the API only reads the record). */
async function fakeExport(key: string, projectId: string): Promise<string> {
  const { export_id: id } = await call(key, "POST", `/v1/projects/${projectId}/exports`);
  const exp = (await getExport(env.deps, projectId, id))!;
  const uploaded = await updateExportArtifact(env.deps, exp, { size_bytes: 10, sha256: "0".repeat(64), pg_dump_version: "15.0", server_version: "15.0" });
  expect(await markExportCompleted(env.deps, uploaded!)).toBeDefined();
  return id;
}

/** A preview the routes that change one can act on (reset refuses a provisioning one). */
async function readyPreview(key: string, projectId: string): Promise<string> {
  const id = (await call(key, "POST", `/v1/projects/${projectId}/preview-databases`, {})).preview.id as string;
  const { UpdateCommand } = await import("@aws-sdk/lib-dynamodb");
  await env.deps.ddb.send(
    new UpdateCommand({
      TableName: env.deps.table,
      Key: keys.preview(id),
      UpdateExpression: "SET #s = :r",
      ExpressionAttributeNames: { "#s": "state" },
      ExpressionAttributeValues: { ":r": "ready" },
    }),
  );
  return id;
}

beforeAll(async () => {
  env = await createWebhookEnv();
  // Every successful call of a preview route makes a preview: more than the default limit of 5.
  env.deps.previewLimit = 50;
  clerk = await startFakeClerk();
  const tenant = await env.seedTenant({ database: "sec_db", clerkOrganizationId: clerkOrg });
  // A sibling project in the same organization, on the same cluster.
  const siblingProject = await createProject(env.deps, {
    organization_id: tenant.organizationId,
    cluster_id: tenant.clusterId,
    name: uniq("sibling"),
    database_name: "sec_sibling",
  });
  const sibling: Tenant = { ...tenant, projectId: siblingProject.id, database: "sec_sibling" };
  const other = await env.seedTenant({ database: "sec_other", clerkOrganizationId: otherClerkOrg });
  fixtures = { tenant, sibling, other, jobId: "", siblingJobId: "", app: () => env.app({ clerk: clerk.config }) };
  const key = await adminKey();
  const job = async (p: string) => (await call(key, "POST", `/v1/projects/${p}/backups`)).job.id as string;
  fixtures.jobId = await job(tenant.projectId);
  fixtures.siblingJobId = await job(sibling.projectId);
  for (const p of [tenant.projectId, sibling.projectId]) {
    const b = await fakeBackup(env, p);
    backupOf.set(p, b);
    exportOf.set(p, await fakeExport(key, p));
    previewOf.set(p, (await call(key, "POST", `/v1/projects/${p}/preview-databases`, {})).preview.id);
    pointOf.set(p, (await call(key, "POST", `/v1/projects/${p}/restore-points`, { label: "p", backup_key: b.backup_key })).restore_point.id);
  }
}, 120_000);
afterAll(async () => {
  await clerk?.stop();
  await env?.cleanup();
});

type Entry = Endpoint & {
  /** The route as the app registers it: `METHOD /path/{param}`. */
  route: string;
  /** Makes what the route consumes, just before its matrix runs. */
  prepare?: () => Promise<void>;
};

const org = () => `/v1/organizations/${fixtures.tenant.organizationId}`;

/** Pending CLI logins, one per call: approving or denying one settles it, so each call takes a fresh one. */
const logins: string[] = [];
const moreLogins = async () => {
  for (let i = 0; i < 20; i++) {
    const res = await fixtures.app!().request("/v1/cli/login/sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ device_name: `matrix ${i}` }),
    });
    logins.push(((await body(res)) as { session_id: string }).session_id);
  }
};
const freshLogin = () => logins.shift() ?? "cli_01m8bbd943485gy3g6c722w2d4";
const webhooks = () => `${org()}/webhook-endpoints`;

const entries: Entry[] = [
  // The caller's own view.
  { route: "GET /v1/me", name: "me", method: "GET", path: () => "/v1/me", scope: null, ok: 200, tenancy: "caller" },
  // A CLI login, as a signed-in person approving it sees it (any credential: the key it makes belongs to the approver's organization).
  {
    route: "GET /v1/cli/login/sessions/{sessionID}/approval",
    name: "see a CLI login",
    method: "GET",
    path: () => `/v1/cli/login/sessions/${logins[0] ?? "x"}/approval`,
    scope: null,
    ok: 200,
    tenancy: "caller",
    prepare: moreLogins,
  },
  {
    route: "POST /v1/cli/login/sessions/{sessionID}/approve",
    name: "approve a CLI login",
    method: "POST",
    path: () => `/v1/cli/login/sessions/${freshLogin()}/approve`,
    scope: null,
    ok: 200,
    tenancy: "caller",
    prepare: moreLogins,
  },
  {
    route: "POST /v1/cli/login/sessions/{sessionID}/deny",
    name: "deny a CLI login",
    method: "POST",
    path: () => `/v1/cli/login/sessions/${freshLogin()}/deny`,
    scope: null,
    ok: 200,
    tenancy: "caller",
    prepare: moreLogins,
  },
  { route: "GET /v1/projects", name: "list projects", method: "GET", path: () => "/v1/projects", scope: "projects:read", ok: 200, tenancy: "caller" },

  // A project and what it holds.
  { route: "GET /v1/projects/{projectID}", name: "get project", method: "GET", path: (p) => `/v1/projects/${p}`, scope: "projects:read", ok: 200 },
  {
    route: "GET /v1/projects/{projectID}/audit-events",
    name: "project audit events",
    method: "GET",
    path: (p) => `/v1/projects/${p}/audit-events`,
    scope: "projects:read",
    ok: 200,
  },
  {
    route: "POST /v1/projects/{projectID}/approvals",
    name: "create approval",
    method: "POST",
    path: (p) => `/v1/projects/${p}/approvals`,
    scope: "projects:read",
    body: { action: "project.restore_overwrite" },
    ok: 201,
    sessionOnly: { admin: () => clerk.admin(clerkOrg), foreignAdmin: () => clerk.admin(otherClerkOrg) },
  },
  {
    route: "GET /v1/projects/{projectID}/scheduled-backups",
    name: "list schedules",
    method: "GET",
    path: (p) => `/v1/projects/${p}/scheduled-backups`,
    scope: "backups:read",
    ok: 200,
  },
  {
    route: "PUT /v1/projects/{projectID}/scheduled-backups/default",
    name: "put schedule",
    method: "PUT",
    path: (p) => `/v1/projects/${p}/scheduled-backups/default`,
    scope: "backups:write",
    body: { cron_hour: 1, cron_minute: 2, is_active: true },
    ok: 200,
  },
  {
    route: "GET /v1/projects/{projectID}/backups",
    name: "list backups",
    method: "GET",
    path: (p) => `/v1/projects/${p}/backups`,
    scope: "backups:read",
    ok: 200,
  },
  {
    route: "POST /v1/projects/{projectID}/backups",
    name: "create backup",
    method: "POST",
    path: (p) => `/v1/projects/${p}/backups`,
    scope: "backups:write",
    body: {},
    ok: 202,
  },
  {
    route: "GET /v1/projects/{projectID}/backups/{backupID}/download",
    name: "download backup",
    method: "GET",
    path: (p) => `/v1/projects/${p}/backups/${backupOf.get(p)?.id}/download`,
    scope: "backups:read",
    ok: 200,
  },
  {
    route: "GET /v1/projects/{projectID}/exports",
    name: "list exports",
    method: "GET",
    path: (p) => `/v1/projects/${p}/exports`,
    scope: "backups:read",
    ok: 200,
  },
  {
    route: "POST /v1/projects/{projectID}/exports",
    name: "create export",
    method: "POST",
    path: (p) => `/v1/projects/${p}/exports`,
    scope: "backups:write",
    ok: 202,
  },
  {
    route: "GET /v1/projects/{projectID}/exports/{exportID}/download",
    name: "download export",
    method: "GET",
    path: (p) => `/v1/projects/${p}/exports/${exportOf.get(p)}/download`,
    scope: "backups:read",
    ok: 200,
  },
  { route: "GET /v1/projects/{projectID}/jobs", name: "list jobs", method: "GET", path: (p) => `/v1/projects/${p}/jobs`, scope: "jobs:read", ok: 200 },
  { route: "GET /v1/jobs/{jobID}", name: "get job", method: "GET", path: (_p, j) => `/v1/jobs/${j}`, scope: "jobs:read", ok: 200 },
  {
    route: "POST /v1/projects/{projectID}/restores",
    name: "restore",
    method: "POST",
    path: (p) => `/v1/projects/${p}/restores`,
    scope: "backups:write",
    // The tenant's own backup: the sibling's path is a 404 before the body matters.
    get body() {
      return { backup_key: backupOf.get(fixtures.tenant.projectId)?.backup_key };
    },
    ok: 202,
  },
  {
    route: "GET /v1/projects/{projectID}/restore-points",
    name: "list restore points",
    method: "GET",
    path: (p) => `/v1/projects/${p}/restore-points`,
    scope: "backups:read",
    ok: 200,
  },
  {
    route: "GET /v1/projects/{projectID}/pitr",
    name: "read the point-in-time window",
    method: "GET",
    path: (p) => `/v1/projects/${p}/pitr`,
    scope: "backups:read",
    ok: 200,
  },
  {
    route: "POST /v1/projects/{projectID}/restore-points",
    name: "create restore point",
    method: "POST",
    path: (p) => `/v1/projects/${p}/restore-points`,
    scope: "backups:write",
    body: { label: "sec" },
    ok: 201,
  },
  {
    route: "DELETE /v1/projects/{projectID}/restore-points/{restorePointID}",
    name: "delete restore point",
    method: "DELETE",
    path: (p) => `/v1/projects/${p}/restore-points/${pointOf.get(p)}`,
    scope: "backups:write",
    ok: 200,
  },

  // Preview databases: addressed by their own id; projects:write is an organization scope.
  {
    route: "GET /v1/projects/{projectID}/preview-databases",
    name: "list previews",
    method: "GET",
    path: (p) => `/v1/projects/${p}/preview-databases`,
    scope: "projects:read",
    ok: 200,
  },
  {
    route: "POST /v1/projects/{projectID}/preview-databases",
    name: "create preview",
    method: "POST",
    path: (p) => `/v1/projects/${p}/preview-databases`,
    scope: "projects:write",
    body: {},
    ok: 202,
    projectScoped: false,
  },
  {
    route: "GET /v1/preview-databases/{previewID}",
    name: "get preview",
    method: "GET",
    path: (p) => `/v1/preview-databases/${previewOf.get(p)}`,
    scope: "projects:read",
    ok: 200,
  },
  {
    route: "GET /v1/preview-databases/{previewID}/connections",
    name: "preview connections",
    method: "GET",
    path: (p) => `/v1/preview-databases/${previewOf.get(p)}/connections`,
    scope: "credentials:read",
    ok: 200,
  },
  {
    route: "POST /v1/preview-databases/{previewID}/extend",
    name: "extend preview",
    method: "POST",
    path: (p) => `/v1/preview-databases/${previewOf.get(p)}/extend`,
    scope: "projects:write",
    body: { ttl_hours: 5 },
    ok: 200,
    projectScoped: false,
  },
  {
    route: "POST /v1/preview-databases/{previewID}/reset",
    name: "reset preview",
    method: "POST",
    path: () => `/v1/preview-databases/${made.previewToReset}/reset`,
    scope: "projects:write",
    ok: 202,
    projectScoped: false,
    prepare: async () => void (made.previewToReset = await readyPreview(await adminKey(), fixtures.tenant.projectId)),
  },
  {
    route: "POST /v1/preview-databases/{previewID}/promote",
    name: "promote preview",
    method: "POST",
    path: () => `/v1/preview-databases/${made.previewToPromote}/promote`,
    scope: "projects:write",
    get body() {
      return { approval_token: made.promoteToken };
    },
    ok: 202,
    projectScoped: false,
    prepare: async () => {
      // A project of its own, so that no other job of the matrix's stands in the promote's way.
      const { tenant } = fixtures;
      const project = await createProject(env.deps, {
        organization_id: tenant.organizationId,
        cluster_id: tenant.clusterId,
        name: uniq("promote"),
        database_name: "sec_promote",
      });
      const { preview } = await createPreview(env.deps, project, { mode: "empty", backupId: null, jobType: "branch.create" });
      made.previewToPromote = (await markPreviewReady(env.deps, preview, preview.job_id))!.id;
      made.promoteToken = (
        await createApproval(env.deps, { project, action: "project.promote_preview", actor: { kind: "operator", id: "security-matrix" } })
      ).token;
    },
  },
  {
    route: "DELETE /v1/preview-databases/{previewID}",
    name: "delete preview",
    method: "DELETE",
    path: () => `/v1/preview-databases/${made.previewToDelete}`,
    scope: "projects:write",
    ok: 202,
    projectScoped: false,
    prepare: async () => void (made.previewToDelete = await readyPreview(await adminKey(), fixtures.tenant.projectId)),
  },

  // The organization: its keys, audit trail and webhooks (organization scopes: no project-scoped key holds them).
  {
    route: "GET /v1/organizations/{orgID}/api-keys",
    name: "list api keys",
    method: "GET",
    path: () => `${org()}/api-keys`,
    scope: "api_keys:read",
    ok: 200,
    projectScoped: false,
  },
  {
    route: "POST /v1/organizations/{orgID}/api-keys",
    name: "create api key",
    method: "POST",
    path: () => `${org()}/api-keys`,
    scope: "api_keys:write",
    // Only scopes the caller holds may be granted.
    body: { name: "made by the matrix", scopes: ["api_keys:write"] },
    ok: 201,
    projectScoped: false,
  },
  {
    route: "DELETE /v1/organizations/{orgID}/api-keys/{keyID}",
    name: "revoke api key",
    method: "DELETE",
    path: () => `${org()}/api-keys/${made.keyToRevoke}`,
    scope: "api_keys:write",
    ok: 200,
    projectScoped: false,
    // Within the revoker's scopes: a key may revoke only keys whose scopes it holds (the matrix's key holds just api_keys:write).
    prepare: async () => {
      made.keyToRevoke = (await call(await adminKey(), "POST", `${org()}/api-keys`, { name: "to revoke", scopes: ["api_keys:write"] })).api_key.id;
    },
  },
  {
    route: "GET /v1/organizations/{orgID}",
    name: "get organization",
    method: "GET",
    path: () => org(),
    scope: "organizations:read",
    ok: 200,
    projectScoped: false,
  },
  {
    route: "GET /v1/organizations/{orgID}/audit-events",
    name: "organization audit events",
    method: "GET",
    path: () => `${org()}/audit-events`,
    scope: "organizations:read",
    ok: 200,
    projectScoped: false,
  },
  {
    route: "GET /v1/organizations/{orgID}/webhook-endpoints",
    name: "list webhook endpoints",
    method: "GET",
    path: webhooks,
    scope: "organizations:read",
    ok: 200,
    projectScoped: false,
  },
  {
    route: "POST /v1/organizations/{orgID}/webhook-endpoints",
    name: "create webhook endpoint",
    method: "POST",
    path: webhooks,
    scope: "organizations:write",
    body: { url: "http://127.0.0.1:9/matrix" },
    ok: 201,
    projectScoped: false,
  },
  {
    route: "GET /v1/organizations/{orgID}/webhook-endpoints/{endpointID}",
    name: "get webhook endpoint",
    method: "GET",
    path: () => `${webhooks()}/${made.endpoint}`,
    scope: "organizations:read",
    ok: 200,
    projectScoped: false,
    prepare: async () => {
      made.endpoint ??= (await call(await adminKey(), "POST", webhooks(), { url: "http://127.0.0.1:9/matrix" })).webhook_endpoint.id;
    },
  },
  {
    route: "PATCH /v1/organizations/{orgID}/webhook-endpoints/{endpointID}",
    name: "update webhook endpoint",
    method: "PATCH",
    path: () => `${webhooks()}/${made.endpoint}`,
    scope: "organizations:write",
    body: { description: "patched by the matrix" },
    ok: 200,
    projectScoped: false,
  },
  {
    route: "POST /v1/organizations/{orgID}/webhook-endpoints/{endpointID}/rotate-secret",
    name: "rotate webhook secret",
    method: "POST",
    path: () => `${webhooks()}/${made.endpoint}/rotate-secret`,
    scope: "organizations:write",
    ok: 200,
    projectScoped: false,
  },
  {
    route: "POST /v1/organizations/{orgID}/webhook-endpoints/{endpointID}/test",
    name: "send test webhook",
    method: "POST",
    path: () => `${webhooks()}/${made.endpoint}/test`,
    scope: "organizations:write",
    ok: 202,
    projectScoped: false,
  },
  {
    route: "GET /v1/organizations/{orgID}/webhook-endpoints/{endpointID}/deliveries",
    name: "list webhook deliveries",
    method: "GET",
    path: () => `${webhooks()}/${made.endpoint}/deliveries`,
    scope: "organizations:read",
    ok: 200,
    projectScoped: false,
  },
  {
    route: "POST /v1/organizations/{orgID}/webhook-endpoints/{endpointID}/deliveries/{deliveryID}/redeliver",
    name: "redeliver webhook",
    method: "POST",
    path: () => `${webhooks()}/${made.endpoint}/deliveries/${made.delivery}/redeliver`,
    scope: "organizations:write",
    ok: 202,
    projectScoped: false,
    prepare: async () => {
      made.delivery = (await call(await adminKey(), "POST", `${webhooks()}/${made.endpoint}/test`)).delivery.id;
    },
  },
  {
    route: "DELETE /v1/organizations/{orgID}/webhook-endpoints/{endpointID}",
    name: "delete webhook endpoint",
    method: "DELETE",
    path: () => `${webhooks()}/${made.endpointToDelete}`,
    scope: "organizations:write",
    ok: 200,
    projectScoped: false,
    prepare: async () => {
      made.endpointToDelete = (await call(await adminKey(), "POST", webhooks(), { url: "http://127.0.0.1:9/gone" })).webhook_endpoint.id;
    },
  },
];

describe("security matrix", () => {
  it.each(entries.map((e) => [e.route, e] as const))(
    "%s",
    async (_route, entry) => {
      await entry.prepare?.();
      await securityMatrix(env, entry, fixtures);
    },
    120_000,
  );

  it("covers every route the app serves: a route without an entry above fails here", async () => {
    const app = env.app();
    const served = app.routes.filter((r) => r.method !== "ALL" && r.path.startsWith("/v1/")).map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
    const doc = await body(await app.request("/v1/openapi.json"));
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    // Public routes (no credential: the OpenAPI document, the CLI's login start and poll) have their own tests.
    const isPublic = (r: string) => PUBLIC_ROUTES.map((p) => p.replace(/:(\w+)/g, "{$1}")).includes(r);
    const all = [...new Set([...served, ...documented])].filter((r) => !isPublic(r)).sort();
    const covered = new Set(entries.map((e) => e.route));
    expect(
      all.filter((r) => !covered.has(r)),
      "routes without a security matrix entry",
    ).toEqual([]);
    expect(
      [...covered].filter((r) => !all.includes(r)),
      "matrix entries for routes the app does not serve",
    ).toEqual([]);
    expect(all.length, "the app serves routes").toBeGreaterThanOrEqual(39);

    // Each entry calls the route it names.
    for (const e of entries) {
      const [method, template] = e.route.split(" ") as [string, string];
      const re = new RegExp(`^${template.replace(/\{\w+\}/g, "[^/]+")}$`);
      expect(e.method, e.route).toBe(method);
      expect(e.path(fixtures.tenant.projectId, fixtures.jobId), e.route).toMatch(re);
    }
  });
});
