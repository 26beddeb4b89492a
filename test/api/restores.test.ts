import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BackupItem } from "../../core/backups/backups.ts";
import { keys } from "../../core/db/keys.ts";
import { createProject } from "../../core/orgs/orgs.ts";
import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { fakeBackup as fakeBackupRecord } from "../support/fake-backup.ts";
import { securityMatrix, type Endpoint } from "../support/security.ts";
import { body, expectShape } from "../support/spec.ts";
import type { Scope } from "../../core/auth/scopes.ts";

let env: TestEnv;
const allScopes: Scope[] = ["backups:read", "backups:write", "jobs:read", "projects:read", "projects:write", "credentials:read"];

beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => env?.cleanup());

const fakeBackup = (projectId: string, fields: Partial<BackupItem> = {}) => fakeBackupRecord(env, projectId, fields);

function caller(key: string) {
  return async (method: string, path: string, payload?: unknown) => {
    const res = await env.app().request(path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(payload !== undefined ? { "content-type": "application/json" } : {}) },
      body: payload !== undefined ? JSON.stringify(payload) : undefined,
    });
    return { status: res.status, body: await body(res) };
  };
}

describe("POST /v1/projects/{projectID}/restores refusals", () => {
  let tenant: Tenant;
  let call: ReturnType<typeof caller>;
  let good: BackupItem;
  beforeAll(async () => {
    tenant = await env.seedTenant({ database: "rst_db" });
    call = caller(await tenant.key(allScopes));
    good = await fakeBackup(tenant.projectId);
  });
  const restore = (payload: unknown) => call("POST", `/v1/projects/${tenant.projectId}/restores`, payload);

  it("answers each rule with its status and a message that names it", async () => {
    const other = await env.seedTenant({ database: "rst_other" });
    const foreign = await fakeBackup(other.projectId);
    const expired = await fakeBackup(tenant.projectId, { state: "expired" });
    const failed = await fakeBackup(tenant.projectId, {
      state: "failed",
      verification_state: "failed",
      verification_error: "The backup did not restore: boom",
    });
    const pending = await fakeBackup(tenant.projectId, { state: "pending", verification_state: "pending" });
    const unverified = await fakeBackup(tenant.projectId, { verification_state: "pending", verified_at: null });

    const cases: [unknown, number, RegExp][] = [
      [{}, 400, /exactly one source: backup_key, restore_point_id or restore_time/],
      [{ backup_key: "" }, 400, /exactly one source/],
      [{ backup_key: good.backup_key, restore_point_id: "rpt_01m8bbd943485gy3g6c722w2d4" }, 400, /not several/],
      [{ restore_time: "2026-11-01T00:00:00Z" }, 400, /point-in-time recovery is not available for this project/],
      [{ backup_key: good.backup_key, target_kind: "project" }, 409, /production project: restoring over its database is refused/],
      [{ backup_key: good.backup_key, target_kind: "nope" }, 400, /target_kind/],
      [{ backup_key: good.backup_key, ttl_hours: 500 }, 400, /ttl_hours/],
      [{ backup_key: good.backup_key, preview_name: "bad name!" }, 400, /preview_name/],
      [{ backup_key: foreign.backup_key }, 404, new RegExp(`backup ${foreign.backup_key} not found`)],
      [{ backup_key: "projects/whatever.dump" }, 404, /not found/],
      [{ backup_key: expired.backup_key }, 400, new RegExp(`backup ${expired.id} expired`)],
      [{ backup_key: failed.backup_key }, 400, new RegExp(`backup ${failed.id} failed \\(The backup did not restore: boom\\)`)],
      [{ backup_key: pending.backup_key }, 409, new RegExp(`backup ${pending.id} is pending`)],
      [{ backup_key: unverified.backup_key }, 400, /is not verified .*allow_unverified_backup: true/],
      [{ restore_point_id: "rpt_01m8bbd943485gy3g6c722w2d4" }, 404, /restore point .* not found/],
      [{ backup_key: good.backup_key, target_kind: "preview" }, 400, /preview_id: is required/],
      [{ backup_key: good.backup_key, target_kind: "preview", preview_id: "pvw_01m8bbd943485gy3g6c722w2d4" }, 404, /preview .* not found/],
      [{ backup_key: good.backup_key, preview_id: "pvw_01m8bbd943485gy3g6c722w2d4" }, 400, /preview_id is for target_kind preview/],
    ];
    for (const [payload, status, message] of cases) {
      const res = await restore(payload);
      expect(res.status, `${JSON.stringify(payload)} -> ${JSON.stringify(res.body)}`).toBe(status);
      expect(Object.keys(res.body)).toEqual(["error"]);
      expect(res.body.error, JSON.stringify(payload)).toMatch(message);
    }
    // An unverified backup goes with the explicit flag.
    const allowed = await restore({ backup_key: unverified.backup_key, allow_unverified_backup: true });
    expect(allowed.status, JSON.stringify(allowed.body)).toBe(202);
  });

  it("202s a project.restore job with exactly SPEC's Job fields and preview_database_id set", async () => {
    const res = await restore({ backup_key: good.backup_key, preview_name: "shape", ttl_hours: 3 });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(Object.keys(res.body)).toEqual(["job"]);
    expectShape("Job", res.body.job, expect);
    expect(res.body.job).toMatchObject({ type: "project.restore", state: "pending", preview_database_id: expect.stringMatching(/^pvw_/) });
    const preview = await call("GET", `/v1/preview-databases/${res.body.job.preview_database_id}`);
    expectShape("Preview", preview.body.preview, expect);
    expect(preview.body.preview).toMatchObject({
      name: "shape",
      mode: "clone",
      state: "provisioning",
      source_kind: "backup",
      source_backup_key: good.backup_key,
    });
    const hours = (Date.parse(preview.body.preview.ttl_expires_at) - Date.parse(preview.body.preview.created_at)) / 3600_000;
    expect(hours).toBe(3);
  });

  it("a preview still being provisioned cannot take another restore (409)", async () => {
    const first = await restore({ backup_key: good.backup_key });
    const again = await restore({ backup_key: good.backup_key, target_kind: "preview", preview_id: first.body.job.preview_database_id, recreate: true });
    expect(again.status, JSON.stringify(again.body)).toBe(409);
    expect(again.body.error).toMatch(/is provisioning: wait until it is ready/);
  });
});

describe("preview databases: the limit, reset, extend", () => {
  it("at most 5 live previews per project: the 6th is a 409 that says so; deleting one frees a place", async () => {
    const tenant = await env.seedTenant({ database: "pvw_limit" });
    const call = caller(await tenant.key(allScopes));
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call("POST", `/v1/projects/${tenant.projectId}/preview-databases`, { name: `p${i}` });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      expectShape("Preview", res.body.preview, expect);
      expect(res.body.preview).toMatchObject({ mode: "empty", state: "provisioning", source_kind: "empty", source_backup_key: null });
      made.push(res.body.preview.id);
    }
    const sixth = await call("POST", `/v1/projects/${tenant.projectId}/preview-databases`, { name: "p5" });
    expect(sixth.status, JSON.stringify(sixth.body)).toBe(409);
    expect(sixth.body.error).toMatch(/already has 5 live preview databases \(the limit\)/);
    const del = await call("DELETE", `/v1/preview-databases/${made[0]}`);
    expect(del.status, JSON.stringify(del.body)).toBe(202);
    const now = await call("POST", `/v1/projects/${tenant.projectId}/preview-databases`, { name: "p5" });
    expect(now.status, JSON.stringify(now.body)).toBe(202);

    const list = await call("GET", `/v1/projects/${tenant.projectId}/preview-databases`);
    expect(list.status).toBe(200);
    expect(list.body.preview_databases).toHaveLength(6);
    for (const p of list.body.preview_databases) expectShape("Preview", p, expect);
  });

  it("clone without a verified backup is a 409; bad bodies are 400s naming the field", async () => {
    const tenant = await env.seedTenant({ database: "pvw_noclone" });
    const call = caller(await tenant.key(allScopes));
    const clone = await call("POST", `/v1/projects/${tenant.projectId}/preview-databases`, { mode: "clone" });
    expect(clone.status, JSON.stringify(clone.body)).toBe(409);
    expect(clone.body.error).toMatch(/no completed, verified backup to clone/);
    for (const [payload, field] of [
      [{ mode: "fork" }, "mode"],
      [{ ttl_hours: 0 }, "ttl_hours"],
      [{ ttl_hours: 169 }, "ttl_hours"],
      [{ name: "" }, "name"],
    ] as const) {
      const res = await call("POST", `/v1/projects/${tenant.projectId}/preview-databases`, payload);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toMatch(new RegExp(field));
    }
  });

  it("extend moves expires_at to ttl_hours from now; reset is refused while provisioning", async () => {
    const tenant = await env.seedTenant({ database: "pvw_extend" });
    const call = caller(await tenant.key(allScopes));
    const created = await call("POST", `/v1/projects/${tenant.projectId}/preview-databases`, { ttl_hours: 1 });
    const id = created.body.preview.id;
    const ext = await call("POST", `/v1/preview-databases/${id}/extend`, { ttl_hours: 48 });
    expect(ext.status, JSON.stringify(ext.body)).toBe(200);
    expectShape("Preview", ext.body.preview, expect);
    const hours = (Date.parse(ext.body.preview.ttl_expires_at) - Date.parse(ext.body.preview.updated_at)) / 3600_000;
    expect(hours).toBe(48);
    const bad = await call("POST", `/v1/preview-databases/${id}/extend`, { ttl_hours: 1000 });
    expect(bad.status).toBe(400);
    const reset = await call("POST", `/v1/preview-databases/${id}/reset`);
    expect(reset.status, JSON.stringify(reset.body)).toBe(409);
    expect(reset.body.error).toMatch(/is provisioning/);
  });
});

describe("restore points", () => {
  it("create pins a completed backup; list shows it with pitr_window_days 0; delete hands it back; pitr is refused", async () => {
    const tenant = await env.seedTenant({ database: "rpt_db" });
    const call = caller(await tenant.key(allScopes));
    const backup = await fakeBackup(tenant.projectId);
    const created = await call("POST", `/v1/projects/${tenant.projectId}/restore-points`, { label: "before v2", backup_key: backup.backup_key, note: "keep" });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expectShape("RestorePoint", created.body.restore_point, expect);
    expect(created.body.restore_point).toMatchObject({
      kind: "backup",
      label: "before v2",
      note: "keep",
      backup_id: backup.id,
      backup_key: backup.backup_key,
      pitr_time: null,
      state: "active",
      created_by_actor_kind: "api_key",
    });
    const list = await call("GET", `/v1/projects/${tenant.projectId}/restore-points`);
    expect(list.status).toBe(200);
    expect(Object.keys(list.body).sort()).toEqual(["pitr_window_days", "restore_points"]);
    expect(list.body.pitr_window_days).toBe(0);
    expect(list.body.restore_points.map((p: { id: string }) => p.id)).toEqual([created.body.restore_point.id]);

    const pitr = await call("POST", `/v1/projects/${tenant.projectId}/restore-points`, { label: "x", kind: "pitr" });
    expect(pitr.status).toBe(400);
    expect(pitr.body.error).toMatch(/point-in-time recovery is not available/);
    const noLabel = await call("POST", `/v1/projects/${tenant.projectId}/restore-points`, { backup_key: backup.backup_key });
    expect(noLabel.status).toBe(400);
    expect(noLabel.body.error).toMatch(/label/);
    const expired = await fakeBackup(tenant.projectId, { state: "expired" });
    const onExpired = await call("POST", `/v1/projects/${tenant.projectId}/restore-points`, { label: "x", backup_key: expired.backup_key });
    expect(onExpired.status, JSON.stringify(onExpired.body)).toBe(400);

    // A restore from the point is a project.restore of its backup.
    const restore = await call("POST", `/v1/projects/${tenant.projectId}/restores`, { restore_point_id: created.body.restore_point.id });
    expect(restore.status, JSON.stringify(restore.body)).toBe(202);
    const preview = await call("GET", `/v1/preview-databases/${restore.body.job.preview_database_id}`);
    expect(preview.body.preview.source_backup_key).toBe(backup.backup_key);

    const del = await call("DELETE", `/v1/projects/${tenant.projectId}/restore-points/${created.body.restore_point.id}`);
    expect(del.status, JSON.stringify(del.body)).toBe(200);
    expectShape("RestorePoint", del.body.restore_point, expect);
    expect(del.body.restore_point.state).toBe("deleted");
    const fromDeleted = await call("POST", `/v1/projects/${tenant.projectId}/restores`, { restore_point_id: created.body.restore_point.id });
    expect(fromDeleted.status).toBe(400);
    expect(fromDeleted.body.error).toMatch(/was deleted/);
  });
});

describe("tenancy", () => {
  it("another organization's previews, restore points and backups are 404s", async () => {
    const tenant = await env.seedTenant({ database: "ten_a" });
    const other = await env.seedTenant({ database: "ten_b" });
    const mine = caller(await tenant.key(allScopes));
    const theirs = caller(await other.key(allScopes));
    const preview = (await mine("POST", `/v1/projects/${tenant.projectId}/preview-databases`, {})).body.preview.id;
    const backup = await fakeBackup(tenant.projectId);
    const point = (await mine("POST", `/v1/projects/${tenant.projectId}/restore-points`, { label: "p", backup_key: backup.backup_key })).body.restore_point.id;
    for (const [method, path, payload] of [
      ["GET", `/v1/preview-databases/${preview}`],
      ["GET", `/v1/preview-databases/${preview}/connections`],
      ["DELETE", `/v1/preview-databases/${preview}`],
      ["POST", `/v1/preview-databases/${preview}/reset`],
      ["POST", `/v1/preview-databases/${preview}/extend`, { ttl_hours: 2 }],
      ["DELETE", `/v1/projects/${tenant.projectId}/restore-points/${point}`],
      ["POST", `/v1/projects/${other.projectId}/restores`, { backup_key: backup.backup_key }],
      ["POST", `/v1/projects/${other.projectId}/restores`, { restore_point_id: point }],
      [
        "POST",
        `/v1/projects/${other.projectId}/restores`,
        { backup_key: backup.backup_key.replace(tenant.projectId, other.projectId), target_kind: "preview", preview_id: preview },
      ],
      ["POST", `/v1/projects/${other.projectId}/restore-points`, { label: "x", backup_key: backup.backup_key }],
    ] as [string, string, unknown?][]) {
      const res = await theirs(method, path, payload);
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(404);
    }
    // Nothing leaked: the preview and the point are as they were.
    expect((await mine("GET", `/v1/preview-databases/${preview}`)).body.preview.state).toBe("provisioning");
    expect((await mine("GET", `/v1/projects/${tenant.projectId}/restore-points`)).body.restore_points[0].state).toBe("active");
  });
});

describe("security matrix of every new route", () => {
  let fixtures: Parameters<typeof securityMatrix>[2];
  const previewOf = new Map<string, string>();
  const pointOf = new Map<string, string>();
  const backupOf = new Map<string, BackupItem>();
  beforeAll(async () => {
    // Each successful call of the matrix makes a preview: more than the default limit of 5.
    env.deps.previewLimit = 20;
    const tenant = await env.seedTenant({ database: "secr_db" });
    const sibling = await createProject(env.deps, {
      organization_id: tenant.organizationId,
      cluster_id: tenant.clusterId,
      name: uniq("sib"),
      database_name: "secr_sib",
    });
    const other = await env.seedTenant({ database: "secr_other" });
    const key = await tenant.key(allScopes);
    const call = caller(key);
    const job = async (p: string) => (await call("POST", `/v1/projects/${p}/backups`, {})).body.job.id as string;
    for (const p of [tenant.projectId, sibling.id]) {
      const b = await fakeBackup(p);
      backupOf.set(p, b);
      previewOf.set(p, (await call("POST", `/v1/projects/${p}/preview-databases`, {})).body.preview.id);
      pointOf.set(p, (await call("POST", `/v1/projects/${p}/restore-points`, { label: "p", backup_key: b.backup_key })).body.restore_point.id);
    }
    fixtures = { tenant, sibling: { ...tenant, projectId: sibling.id }, other, jobId: await job(tenant.projectId), siblingJobId: await job(sibling.id) };
  });

  /** A ready preview of the tenant, for the routes that need one (reset, delete). */
  async function readyPreview(): Promise<string> {
    const call = caller(await fixtures.tenant.key(allScopes));
    const id = (await call("POST", `/v1/projects/${fixtures.tenant.projectId}/preview-databases`, {})).body.preview.id as string;
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

  const endpoints = (): Endpoint[] => [
    { name: "list projects' project", method: "GET", path: (p) => `/v1/projects/${p}`, scope: "projects:read", ok: 200 },
    {
      name: "create preview",
      method: "POST",
      path: (p) => `/v1/projects/${p}/preview-databases`,
      scope: "projects:write",
      body: {},
      ok: 202,
      projectScoped: false,
    },
    { name: "list previews", method: "GET", path: (p) => `/v1/projects/${p}/preview-databases`, scope: "projects:read", ok: 200 },
    { name: "get preview", method: "GET", path: (p) => `/v1/preview-databases/${previewOf.get(p)}`, scope: "projects:read", ok: 200 },
    { name: "preview connections", method: "GET", path: (p) => `/v1/preview-databases/${previewOf.get(p)}/connections`, scope: "credentials:read", ok: 200 },
    {
      name: "extend preview",
      method: "POST",
      path: (p) => `/v1/preview-databases/${previewOf.get(p)}/extend`,
      scope: "projects:write",
      body: { ttl_hours: 5 },
      ok: 200,
      projectScoped: false,
    },
    { name: "restore", method: "POST", path: (p) => `/v1/projects/${p}/restores`, scope: "backups:write", body: { backup_key: "set below" }, ok: 202 },
    { name: "list restore points", method: "GET", path: (p) => `/v1/projects/${p}/restore-points`, scope: "backups:read", ok: 200 },
    { name: "create restore point", method: "POST", path: (p) => `/v1/projects/${p}/restore-points`, scope: "backups:write", body: { label: "sec" }, ok: 201 },
    { name: "delete restore point", method: "DELETE", path: (p) => `/v1/projects/${p}/restore-points/${pointOf.get(p)}`, scope: "backups:write", ok: 200 },
  ];

  it("covers every new route", async () => {
    for (const e of endpoints()) {
      // The restore's body names the tenant's own backup (the sibling's path gets 404 before the body matters).
      const endpoint = e.name === "restore" ? { ...e, body: { backup_key: backupOf.get(fixtures.tenant.projectId)!.backup_key } } : e;
      await securityMatrix(env, endpoint, fixtures);
    }
    const reset = await readyPreview();
    await securityMatrix(
      env,
      { name: "reset preview", method: "POST", path: () => `/v1/preview-databases/${reset}/reset`, scope: "projects:write", ok: 202, projectScoped: false },
      fixtures,
    );
    const del = await readyPreview();
    await securityMatrix(
      env,
      { name: "delete preview", method: "DELETE", path: () => `/v1/preview-databases/${del}`, scope: "projects:write", ok: 202, projectScoped: false },
      fixtures,
    );
  }, 180_000);
});
