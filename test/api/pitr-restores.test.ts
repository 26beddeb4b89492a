import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApproval } from "../../core/approvals/approvals.ts";
import type { Scope } from "../../core/auth/scopes.ts";
import { keys } from "../../core/db/keys.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { getProject } from "../../core/orgs/orgs.ts";
import { listPitrPins } from "../../core/restores/points.ts";
import { getPitrRequest } from "../../core/restores/pitr.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { fakeArchive } from "../support/fake-archive.ts";
import { body, expectShape } from "../support/spec.ts";

/**
 * Point-in-time restores and restore points at the API: the rules of the time against the
 * cluster's window (an archive index with a gap, no objects: the worker is not run here).
 */
let env: TestEnv;
let tenant: Tenant;
let call: (method: string, path: string, payload?: unknown) => Promise<{ status: number; body: any }>;
const t0 = Date.now() - 3_600_000;
const min = (m: number) => new Date(t0 + m * 60_000).toISOString();
const allScopes: Scope[] = ["backups:read", "backups:write", "jobs:read", "projects:read", "projects:write"];

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant();
  await fakeArchive(env, tenant.clusterId, t0);
  const key = await tenant.key(allScopes);
  call = async (method, path, payload) => {
    const res = await env.app().request(path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(payload !== undefined ? { "content-type": "application/json" } : {}) },
      body: payload !== undefined ? JSON.stringify(payload) : undefined,
    });
    return { status: res.status, body: await body(res) };
  };
});
afterAll(async () => env?.cleanup());

const restores = () => `/v1/projects/${tenant.projectId}/restores`;

describe("POST /restores with restore_time", () => {
  it("starts a project.restore job into a new preview and answers the time it restores to", async () => {
    const res = await call("POST", restores(), { restore_time: min(5) });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(Object.keys(res.body).sort()).toEqual(["job", "pitr"]);
    expectShape("Job", res.body.job, expect);
    expect(res.body.job).toMatchObject({ type: "project.restore", state: "pending" });
    expect(res.body.job.preview_database_id).toMatch(/^pvw_/);
    expect(res.body.pitr).toEqual({ requested_restore_time: min(5), restore_time: min(5), restore_time_clamped: false });
    // The worker finds the time beside the job.
    expect(await getPitrRequest(env.deps, res.body.job.id)).toMatchObject({ restore_time: min(5), restore_point_id: null });
  });

  it("moves a time after the latest restorable one back to it, and says so", async () => {
    const later = new Date(Date.now() + 60_000).toISOString();
    const res = await call("POST", restores(), { restore_time: later });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.pitr).toEqual({ requested_restore_time: later, restore_time: min(30), restore_time_clamped: true });
    expect((await getPitrRequest(env.deps, res.body.job.id))?.restore_time).toBe(min(30));
  });

  it("refuses a time before the window or inside a gap with the bounds, and a time that is not RFC 3339", async () => {
    const before = await call("POST", restores(), { restore_time: min(0) });
    expect(before.status).toBe(400);
    expect(before.body.error).toBe(
      `restore_time: ${min(0)} is before the earliest restorable time (the restorable window is ${min(1)} to ${min(30)}, 7 days kept)`,
    );
    const gap = await call("POST", restores(), { restore_time: min(15) });
    expect(gap.status).toBe(400);
    expect(gap.body.error).toContain(`falls in a gap of the WAL archive, from ${min(10)} to ${min(20)}`);
    const bad = await call("POST", restores(), { restore_time: "yesterday" });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/restore_time: must be an RFC 3339 time/);
  });

  it("refuses restore_time where the cluster has no archive", async () => {
    const other = await env.seedTenant();
    const res = await env.app().request(`/v1/projects/${other.projectId}/restores`, {
      method: "POST",
      headers: { authorization: `Bearer ${await other.key(allScopes)}`, "content-type": "application/json" },
      body: JSON.stringify({ restore_time: min(5) }),
    });
    expect(res.status).toBe(400);
    expect((await body(res)).error).toMatch(/its cluster has no WAL archive/);
  });

  it("into the project: the approval and the promote machinery, the time on the request's audit event", async () => {
    await env.deps.ddb.send(
      new UpdateCommand({
        TableName: env.deps.table,
        Key: keys.project(tenant.projectId),
        UpdateExpression: "SET environment = :e",
        ExpressionAttributeValues: { ":e": "non_production" },
      }),
    );
    const project = (await getProject(env.deps, tenant.projectId))!;
    const noToken = await call("POST", restores(), { restore_time: min(25), target_kind: "project" });
    expect(noToken.status).toBe(400);
    const { token } = await createApproval(env.deps, { project, action: "project.restore_overwrite", actor: { kind: "operator", id: "test" } });
    const res = await call("POST", restores(), { restore_time: min(25), target_kind: "project", approval_token: token });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.job).toMatchObject({ type: "project.restore", preview_database_id: null });
    expect(res.body.pitr.restore_time).toBe(min(25));
    expect(await getPitrRequest(env.deps, res.body.job.id)).toMatchObject({ restore_time: min(25) });
    const audit = await call("GET", `/v1/projects/${tenant.projectId}/audit-events?limit=5`);
    const requested = audit.body.audit_events.find((e: { action: string }) => e.action === "project.restore_overwrite_requested");
    expect(requested.metadata).toMatchObject({ job_id: res.body.job.id, restore_time: min(25) });
    expect((await getJobItem(env.deps, res.body.job.id))?.state).toBe("pending");
  });
});

describe("restore points of kind pitr", () => {
  it("records pitr_time, pins the cluster's archive until deleted, and a restore of it restores to its time", async () => {
    const points = `/v1/projects/${tenant.projectId}/restore-points`;
    const created = await call("POST", points, { label: "before migration", kind: "pitr", pitr_time: min(8), note: "v2" });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expectShape("RestorePoint", created.body.restore_point, expect);
    expect(created.body.restore_point).toMatchObject({
      kind: "pitr",
      pitr_time: min(8),
      backup_id: null,
      backup_key: null,
      state: "active",
      label: "before migration",
    });
    const id = created.body.restore_point.id;
    expect((await listPitrPins(env.deps, tenant.clusterId)).map((p) => [p.restore_point_id, p.pitr_time])).toEqual([[id, min(8)]]);

    const restore = await call("POST", restores(), { restore_point_id: id });
    expect(restore.status, JSON.stringify(restore.body)).toBe(202);
    expect(restore.body.pitr).toEqual({ requested_restore_time: min(8), restore_time: min(8), restore_time_clamped: false });
    expect(await getPitrRequest(env.deps, restore.body.job.id)).toMatchObject({ restore_point_id: id });

    const outside = await call("POST", points, { label: "x", kind: "pitr", pitr_time: min(15) });
    expect(outside.status).toBe(400);
    expect(outside.body.error).toMatch(/pitr_time: .* falls in a gap/);
    const future = await call("POST", points, { label: "x", kind: "pitr", pitr_time: new Date(Date.now() + 3_600_000).toISOString() });
    expect(future.status).toBe(400);
    expect(future.body.error).toMatch(/pitr_time: .* is in the future/);

    // Default now: accepted (the archive reaches it within its lag); the WAL mark is best effort.
    const now = await call("POST", points, { label: "now", kind: "pitr" });
    expect(now.status, JSON.stringify(now.body)).toBe(201);
    expect(Date.parse(now.body.restore_point.pitr_time)).toBeGreaterThan(Date.now() - 60_000);

    const del = await call("DELETE", `${points}/${id}`);
    expect(del.status).toBe(200);
    expect((await listPitrPins(env.deps, tenant.clusterId)).map((p) => p.restore_point_id)).toEqual([now.body.restore_point.id]);
  });
});
