import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { body, expectShape } from "../support/spec.ts";

let env: TestEnv;
let tenant: Tenant;
let key: string;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "sched_db" });
  key = await tenant.key();
});
afterAll(async () => env?.cleanup());

const put = (payload: unknown) =>
  env.app().request(`/v1/projects/${tenant.projectId}/scheduled-backups/default`, {
    method: "PUT",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(payload),
  });
const get = () => env.app().request(`/v1/projects/${tenant.projectId}/scheduled-backups`, { headers: { authorization: `Bearer ${key}` } });

describe("scheduled backups", () => {
  it("lists no schedule as an empty array", async () => {
    const res = await get();
    expect(res.status).toBe(200);
    expect(await body(res)).toEqual({ scheduled_backups: [] });
  });

  it("creates the default schedule with defaults (label default, retention 14) and lists it", async () => {
    const res = await put({ cron_hour: 2, cron_minute: 15, is_active: true });
    expect(res.status, await res.clone().text()).toBe(200);
    const { scheduled_backup: s } = await body(res);
    expectShape("ScheduledBackup", s, expect);
    expect(s).toMatchObject({
      organization_id: tenant.organizationId,
      project_id: tenant.projectId,
      label: "default",
      cron_hour: 2,
      cron_minute: 15,
      is_active: true,
      retention_days: 14,
      last_run_at: null,
      last_job_id: null,
    });
    const listed = await body(await get());
    expect(listed.scheduled_backups).toEqual([s]);
  });

  it("treats retention_days 0 as the default 14", async () => {
    const { scheduled_backup: s } = await body(await put({ cron_hour: 3, cron_minute: 0, is_active: true, retention_days: 0 }));
    expect(s.retention_days).toBe(14);
  });

  it.each([
    [{ cron_hour: -1, cron_minute: 0, is_active: true }, /^cron_hour/],
    [{ cron_hour: 24, cron_minute: 0, is_active: true }, /^cron_hour/],
    [{ cron_hour: 1.5, cron_minute: 0, is_active: true }, /^cron_hour/],
    [{ cron_hour: "1", cron_minute: 0, is_active: true }, /^cron_hour/],
    [{ cron_hour: 1, cron_minute: 60, is_active: true }, /^cron_minute/],
    [{ cron_hour: 1, cron_minute: 0, is_active: true, retention_days: 366 }, /^retention_days/],
    [{ cron_hour: 1, cron_minute: 0 }, /^is_active: is required/],
    [{ cron_minute: 0, is_active: true }, /^cron_hour: is required/],
    [{ cron_hour: 1, cron_minute: 0, is_active: "yes" }, /^is_active/],
    [[], /body/],
  ])("rejects %j with a 400 naming the field", async (payload, message) => {
    const res = await put(payload);
    expect(res.status, await res.clone().text()).toBe(400);
    expect(await body(res)).toEqual({ error: expect.stringMatching(message) });
  });

  it("ignores unknown fields (documented: forward-compatible clients)", async () => {
    const res = await put({ cron_hour: 4, cron_minute: 5, is_active: true, timezone: "Europe/Paris" });
    expect(res.status).toBe(200);
    expect(Object.keys((await body(res)).scheduled_backup)).not.toContain("timezone");
  });

  it("replaces every field on a second PUT (no merge) and keeps id and created_at", async () => {
    const first = (await body(await put({ cron_hour: 5, cron_minute: 6, is_active: true, label: "nightly", retention_days: 30 }))).scheduled_backup;
    await new Promise((r) => setTimeout(r, 1100));
    const second = (await body(await put({ cron_hour: 23, cron_minute: 59, is_active: false }))).scheduled_backup;
    expect(second).toMatchObject({ id: first.id, created_at: first.created_at, cron_hour: 23, cron_minute: 59, is_active: false, label: "default", retention_days: 14 });
    expect(second.updated_at > first.updated_at).toBe(true);
    expect((await body(await get())).scheduled_backups).toEqual([second]);
  });

  it("requires a body on PUT", async () => {
    const res = await env.app().request(`/v1/projects/${tenant.projectId}/scheduled-backups/default`, {
      method: "PUT",
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(400);
  });
});
