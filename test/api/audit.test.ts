import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_RETENTION_DAYS } from "../../core/audit/audit.ts";
import { findApiKey } from "../../core/auth/keys.ts";
import { keys } from "../../core/db/keys.ts";
import { startFakeClerk } from "../support/clerk.ts";
import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { body, expectShape } from "../support/spec.ts";

let env: TestEnv;
let clerk: Awaited<ReturnType<typeof startFakeClerk>>;
let tenant: Tenant;
let other: Tenant;
const clerkOrg = uniq("org_clerk");
let app: ReturnType<TestEnv["app"]>;
let reader: string;

beforeAll(async () => {
  env = await createTestEnv();
  clerk = await startFakeClerk();
  const db = await env.createDatabase();
  tenant = await env.seedTenant({ database: db, clerkOrganizationId: clerkOrg });
  other = await env.seedTenant({ database: db });
  app = env.app({ clerk: clerk.config });
  reader = await tenant.key(["projects:read", "organizations:read"]);
});
afterAll(async () => {
  await clerk?.stop();
  await env?.cleanup();
});

const auth = (credential: string) => ({ authorization: `Bearer ${credential}` });
const json = (credential: string) => ({ ...auth(credential), "content-type": "application/json" });

async function list(path: string, credential = reader) {
  const res = await app.request(path, { headers: auth(credential) });
  const b = await body(res);
  expect(res.status, JSON.stringify(b)).toBe(200);
  return { events: b.audit_events as Record<string, any>[], cursor: res.headers.get("x-next-cursor") ?? undefined, body: b };
}
const projectEvents = () => list(`/v1/projects/${tenant.projectId}/audit-events?limit=100`);
const orgEvents = () => list(`/v1/organizations/${tenant.organizationId}/audit-events?limit=100`);

describe("audit events", () => {
  it("record a backup request with the API key that made it, in the same write as the backup; an idempotent replay records nothing", async () => {
    const key = await tenant.key();
    const post = () =>
      app.request(`/v1/projects/${tenant.projectId}/backups`, {
        method: "POST",
        headers: { ...json(key), "idempotency-key": "audit-1" },
        body: JSON.stringify({ label: "before migration" }),
      });
    const res = await post();
    const { job } = await body(res);
    expect(res.status).toBe(202);
    await post();

    const { events } = await projectEvents();
    const requested = events.filter((e) => e.action === "backup.requested");
    expect(requested, JSON.stringify(events)).toHaveLength(1);
    const e = requested[0]!;
    expectShape("AuditEvent", e, expect);
    const backups = (await body(await app.request(`/v1/projects/${tenant.projectId}/backups`, { headers: auth(key) }))).backups;
    expect(e).toMatchObject({
      organization_id: tenant.organizationId,
      project_id: tenant.projectId,
      actor_kind: "api_key",
      target_type: "backup",
      target_id: backups[0].id,
      metadata: { backup_id: backups[0].id, job_id: job.id, label: "before migration", retention_days: 14 },
    });
    expect(e.actor_id).toBe((await findApiKey(env.deps, key))!.id);
    expect(e.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    // Kept a year: DynamoDB's TTL attribute is set on the stored record.
    const raw = await env.deps.ddb.send(
      new GetCommand({ TableName: env.names.table, Key: keys.auditEvent({ projectId: tenant.projectId, organizationId: tenant.organizationId }, e.id) }),
    );
    const ttl = raw.Item?.ttl as number;
    expect(ttl * 1000 - Date.parse(e.created_at)).toBeGreaterThanOrEqual((AUDIT_RETENTION_DAYS - 1) * 86400_000);
    expect(ttl * 1000 - Date.parse(e.created_at)).toBeLessThanOrEqual((AUDIT_RETENTION_DAYS + 1) * 86400_000);
  });

  it("record a schedule change by a member's session (user id as actor) with the settings before and after", async () => {
    const token = await clerk.member(clerkOrg);
    for (const h of [2, 3]) {
      const res = await app.request(`/v1/projects/${tenant.projectId}/scheduled-backups/default`, {
        method: "PUT",
        headers: json(token),
        body: JSON.stringify({ cron_hour: h, cron_minute: 15, is_active: true }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
    }
    const changes = (await projectEvents()).events.filter((e) => e.action === "scheduled_backup.updated");
    expect(changes).toHaveLength(2);
    // Newest first.
    expect(changes[0]).toMatchObject({
      actor_kind: "clerk_session",
      actor_id: "user_2abc",
      target_type: "scheduled_backup",
      metadata: { before: { cron_hour: 2, cron_minute: 15 }, after: { cron_hour: 3, cron_minute: 15, is_active: true, retention_days: 14 } },
    });
    expect(changes[1]!.metadata.before).toBeNull();
  });

  it("record API keys created and revoked (organization-level: in the organization's list, not a project's); never the key itself", async () => {
    const admin = await clerk.admin(clerkOrg);
    const created = await app.request(`/v1/organizations/${tenant.organizationId}/api-keys`, {
      method: "POST",
      headers: json(admin),
      body: JSON.stringify({ name: "ci", scopes: ["backups:read"] }),
    });
    const c = await body(created);
    expect(created.status, JSON.stringify(c)).toBe(201);
    const revoked = await app.request(`/v1/organizations/${tenant.organizationId}/api-keys/${c.api_key.id}`, { method: "DELETE", headers: auth(admin) });
    expect(revoked.status).toBe(200);
    // Revoking again is idempotent and records nothing more.
    await app.request(`/v1/organizations/${tenant.organizationId}/api-keys/${c.api_key.id}`, { method: "DELETE", headers: auth(admin) });

    const org = await orgEvents();
    const keyEvents = org.events.filter((e) => e.target_id === c.api_key.id);
    expect(keyEvents.map((e) => e.action)).toEqual(["api_key.revoked", "api_key.created"]);
    for (const e of keyEvents) expect(e).toMatchObject({ project_id: null, actor_kind: "clerk_session", actor_id: "user_2abc", target_type: "api_key" });
    expect(keyEvents[1]!.metadata).toMatchObject({ name: "ci", scopes: ["backups:read"] });
    expect(JSON.stringify(org.body)).not.toContain(c.key);
    expect((await projectEvents()).events.some((e) => e.target_id === c.api_key.id)).toBe(false);
    // The organization's list also has the project's events.
    expect(org.events.some((e) => e.action === "backup.requested" && e.project_id === tenant.projectId)).toBe(true);
  });

  it("page newest first with limit and x-next-cursor; a cursor from another list is a 400", async () => {
    const all = (await projectEvents()).events;
    expect(all.length).toBeGreaterThanOrEqual(3);
    const ids = all.map((e) => e.id);
    expect([...ids].sort().reverse()).toEqual(ids);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await list(`/v1/projects/${tenant.projectId}/audit-events?limit=1${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.events.length).toBeLessThanOrEqual(1);
      seen.push(...page.events.map((e) => e.id));
      cursor = page.cursor;
    } while (cursor);
    expect(seen).toEqual(ids);

    const first = await list(`/v1/organizations/${tenant.organizationId}/audit-events?limit=1`);
    expect(first.cursor).toBeTruthy();
    const crossed = await app.request(`/v1/projects/${tenant.projectId}/audit-events?cursor=${first.cursor}`, { headers: auth(reader) });
    expect(crossed.status, await crossed.clone().text()).toBe(400);
    const bad = await app.request(`/v1/projects/${tenant.projectId}/audit-events?limit=0`, { headers: auth(reader) });
    expect(bad.status).toBe(400);
  });

  it("are visible only inside the organization, with projects:read / organizations:read", async () => {
    const path = `/v1/projects/${tenant.projectId}/audit-events`;
    expect((await app.request(path, { headers: auth(await tenant.key(["backups:read"])) })).status).toBe(403);
    expect((await app.request(path, { headers: auth(await other.key(["projects:read"])) })).status).toBe(404);
    expect(
      (await app.request(`/v1/organizations/${tenant.organizationId}/audit-events`, { headers: auth(await other.key(["organizations:read"])) })).status,
    ).toBe(404);
    const scoped = await tenant.key(["projects:read"], { projectId: tenant.projectId });
    expect((await app.request(path, { headers: auth(scoped) })).status).toBe(200);
    // A project-scoped key never carries organizations:read, so the organization's list is out of its reach.
    expect((await app.request(`/v1/organizations/${tenant.organizationId}/audit-events`, { headers: auth(scoped) })).status).toBe(403);
    expect((await app.request(path)).status).toBe(401);
  });

  it("cannot be changed or deleted through any route", async () => {
    const before = await orgEvents();
    const target = before.events[0]!;
    const admin = await clerk.admin(clerkOrg);
    const paths = [
      `/v1/projects/${tenant.projectId}/audit-events`,
      `/v1/projects/${tenant.projectId}/audit-events/${target.id}`,
      `/v1/organizations/${tenant.organizationId}/audit-events`,
      `/v1/organizations/${tenant.organizationId}/audit-events/${target.id}`,
    ];
    for (const path of paths) {
      for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
        const res = await app.request(path, {
          method,
          headers: json(admin),
          body: method === "DELETE" ? undefined : JSON.stringify({ action: "nothing.happened", actor_id: "someone-else" }),
        });
        expect([404, 405], `${method} ${path}: ${res.status}`).toContain(res.status);
      }
    }
    expect((await orgEvents()).events).toEqual(before.events);

    const doc = await body(await app.request("/v1/openapi.json"));
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      if (path.includes("audit-events")) expect(Object.keys(ops), path).toEqual(["get"]);
    }
  });

  it("record an export request with its job", async () => {
    const key = await tenant.key(["backups:write", "backups:read"]);
    const res = await app.request(`/v1/projects/${tenant.projectId}/exports`, { method: "POST", headers: json(key), body: "{}" });
    const b = await body(res);
    expect(res.status, JSON.stringify(b)).toBe(202);
    const e = (await projectEvents()).events.find((x) => x.action === "export.requested");
    expect(e).toMatchObject({
      actor_kind: "api_key",
      actor_id: (await findApiKey(env.deps, key))!.id,
      target_type: "export",
      target_id: b.export_id,
      metadata: { job_id: b.job.id },
    });
  });

  it("record previews created, extended and deleted, restores requested, restore points created and deleted", async () => {
    const key = await tenant.key(["backups:read", "backups:write", "projects:read", "projects:write"]);
    const keyId = (await findApiKey(env.deps, key))!.id;
    const created = await app.request(`/v1/projects/${tenant.projectId}/preview-databases`, {
      method: "POST",
      headers: json(key),
      body: JSON.stringify({ name: "look", mode: "empty" }),
    });
    const c = await body(created);
    expect(created.status, JSON.stringify(c)).toBe(202);
    const previewId = c.preview.id;
    const extended = await app.request(`/v1/preview-databases/${previewId}/extend`, {
      method: "POST",
      headers: json(key),
      body: JSON.stringify({ ttl_hours: 48 }),
    });
    expect(extended.status, await extended.clone().text()).toBe(200);

    // A completed, verified backup to restore and to pin (the worker is not part of this file).
    await app.request(`/v1/projects/${tenant.projectId}/backups`, { method: "POST", headers: json(key), body: "{}" });
    const backup = (await body(await app.request(`/v1/projects/${tenant.projectId}/backups`, { headers: auth(key) }))).backups[0];
    const { markBackupCompleted, recordBackupArtifact, getBackup } = await import("../../core/backups/backups.ts");
    const item = (await getBackup(env.deps, tenant.projectId, backup.id))!;
    await recordBackupArtifact(
      env.deps,
      { backup: item, attempt: 1 },
      { size_bytes: 3, sha256: "a".repeat(64), pg_dump_version: "15", server_version: "15", row_counts: {}, dump_ms: 1 },
    );
    await markBackupCompleted(env.deps, item, { verified_at: new Date().toISOString(), restore_ms: 1 });

    const restore = await app.request(`/v1/projects/${tenant.projectId}/restores`, {
      method: "POST",
      headers: json(key),
      body: JSON.stringify({ backup_key: backup.backup_key }),
    });
    const rb = await body(restore);
    expect(restore.status, JSON.stringify(rb)).toBe(202);
    const point = await app.request(`/v1/projects/${tenant.projectId}/restore-points`, {
      method: "POST",
      headers: json(key),
      body: JSON.stringify({ label: "pin", backup_key: backup.backup_key }),
    });
    const pb = await body(point);
    expect(point.status, JSON.stringify(pb)).toBe(201);
    const unpinned = await app.request(`/v1/projects/${tenant.projectId}/restore-points/${pb.restore_point.id}`, { method: "DELETE", headers: auth(key) });
    expect(unpinned.status, await unpinned.clone().text()).toBe(200);
    const deleted = await app.request(`/v1/preview-databases/${previewId}`, { method: "DELETE", headers: auth(key) });
    expect(deleted.status, await deleted.clone().text()).toBe(202);

    const events = (await projectEvents()).events.filter((e) => e.actor_id === keyId);
    const byAction = (a: string) => events.filter((e) => e.action === a);
    expect(byAction("preview.created")[0]).toMatchObject({
      target_type: "preview",
      target_id: previewId,
      metadata: { job_id: c.job.id, mode: "empty", name: "look" },
    });
    expect(byAction("preview.extended")[0]).toMatchObject({ target_id: previewId, metadata: { expires_at_before: c.preview.ttl_expires_at } });
    expect(byAction("restore.requested")[0]).toMatchObject({
      target_type: "job",
      target_id: rb.job.id,
      metadata: { backup_id: backup.id, preview_id: rb.job.preview_database_id, target_kind: "new_preview" },
    });
    expect(byAction("restore_point.created")[0]).toMatchObject({ target_id: pb.restore_point.id, metadata: { backup_id: backup.id } });
    expect(byAction("restore_point.deleted")[0]).toMatchObject({ target_id: pb.restore_point.id });
    expect(byAction("preview.deleted")[0]).toMatchObject({ target_id: previewId });
    for (const e of events) expect(e).toMatchObject({ actor_kind: "api_key", project_id: tenant.projectId, organization_id: tenant.organizationId });
  });

  it("record who took a download URL of a backup", async () => {
    // A completed backup is needed for a download; the worker is not part of this file, so the
    // backup is marked completed in the store the way the worker leaves it.
    const key = await tenant.key();
    const res = await app.request(`/v1/projects/${tenant.projectId}/backups`, { method: "POST", headers: json(key), body: "{}" });
    expect(res.status).toBe(202);
    const backups = (await body(await app.request(`/v1/projects/${tenant.projectId}/backups`, { headers: auth(key) }))).backups;
    const backup = backups[0];
    const { markBackupCompleted, recordBackupArtifact, getBackup } = await import("../../core/backups/backups.ts");
    const item = (await getBackup(env.deps, tenant.projectId, backup.id))!;
    await recordBackupArtifact(
      env.deps,
      { backup: item, attempt: 1 },
      { size_bytes: 3, sha256: "a".repeat(64), pg_dump_version: "15", server_version: "15", row_counts: {}, dump_ms: 1 },
    );
    await markBackupCompleted(env.deps, item, { verified_at: new Date().toISOString(), restore_ms: 1 });
    const dl = await app.request(`/v1/projects/${tenant.projectId}/backups/${backup.id}/download`, { headers: auth(key) });
    const d = await body(dl);
    expect(dl.status, JSON.stringify(d)).toBe(200);
    const e = (await projectEvents()).events.find((x) => x.action === "backup.download_url_issued");
    expect(e).toMatchObject({
      actor_kind: "api_key",
      target_type: "backup",
      target_id: backup.id,
      metadata: { backup_id: backup.id, expires_at: d.download.expires_at },
    });
    expect(JSON.stringify(e)).not.toContain(d.download.download_url);
  });
});
