import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { fakeArchive } from "../support/fake-archive.ts";
import { body } from "../support/spec.ts";

/** GET /v1/projects/{projectID}/pitr and restore points' pitr_window_days, on an archive index (the archive itself: test/wal). */
let env: TestEnv;
let tenant: Tenant;
let bare: Tenant;
const t0 = Date.parse("2026-12-06T00:00:00Z");
const min = (m: number) => new Date(t0 + m * 60_000).toISOString().replace(/\.000Z$/, "Z");

beforeAll(async () => {
  env = await createTestEnv({ now: () => new Date(t0 + 31 * 60_000) });
  tenant = await env.seedTenant();
  bare = await env.seedTenant();
  await fakeArchive(env, tenant.clusterId, t0);
});
afterAll(async () => env?.cleanup());

const get = async (t: Tenant, path: string, scopes?: Parameters<Tenant["key"]>[0]) => {
  const res = await env.app().request(`/v1/projects/${t.projectId}${path}`, { headers: { authorization: `Bearer ${await t.key(scopes)}` } });
  return { status: res.status, body: await body(res) };
};

describe("GET /v1/projects/{projectID}/pitr", () => {
  it("reports the window exactly as SPEC section 7: times, lag, verified base backups, the gap with its bounds", async () => {
    const res = await get(tenant, "/pitr", ["backups:read"]);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body)).toEqual(["pitr"]);
    expect(Object.keys(res.body.pitr).sort()).toEqual([
      "available",
      "base_backups",
      "earliest_restore_time",
      "gaps",
      "lag_seconds",
      "last_drill",
      "latest_restore_time",
      "window_days",
    ]);
    expect(res.body.pitr).toMatchObject({
      available: true,
      window_days: 7,
      earliest_restore_time: min(1),
      latest_restore_time: min(30),
      lag_seconds: 60,
      gaps: [{ from: min(10), to: min(20) }],
      last_drill: null,
    });
    expect(res.body.pitr.base_backups).toHaveLength(2);
    for (const b of res.body.pitr.base_backups) expect(Object.keys(b).sort()).toEqual(["finished_at", "id", "size_bytes", "started_at", "verified_at"]);
  });

  it("a project whose cluster has no archive: unavailable, window 0, null times", async () => {
    const res = await get(bare, "/pitr");
    expect(res.status).toBe(200);
    expect(res.body.pitr).toEqual({
      available: false,
      window_days: 0,
      earliest_restore_time: null,
      latest_restore_time: null,
      lag_seconds: null,
      base_backups: [],
      gaps: [],
      last_drill: null,
    });
  });

  it("needs backups:read, and another organization's project is a 404", async () => {
    expect((await get(tenant, "/pitr", ["jobs:read"])).status).toBe(403);
    const other = await env.app().request(`/v1/projects/${tenant.projectId}/pitr`, { headers: { authorization: `Bearer ${await bare.key()}` } });
    expect(other.status).toBe(404);
  });

  it("restore points report the cluster's real pitr_window_days (0 without an archive)", async () => {
    expect((await get(tenant, "/restore-points")).body.pitr_window_days).toBe(7);
    expect((await get(bare, "/restore-points")).body.pitr_window_days).toBe(0);
  });
});
