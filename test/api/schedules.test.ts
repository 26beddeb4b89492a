import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import type { Deps } from "../../core/deps.ts";
import { runTick, type TickReport } from "../../core/dispatch/handler.ts";
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
    expect(second).toMatchObject({
      id: first.id,
      created_at: first.created_at,
      cron_hour: 23,
      cron_minute: 59,
      is_active: false,
      label: "default",
      retention_days: 14,
    });
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

/** The next UTC day at hh:mm:ss, after anything the API writes now (its clock is the real one). */
function tomorrowAt(day: number, hh: number, mm: number, ss = 0): Date {
  const d = new Date();
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + day, hh, mm, ss));
}
const tickAt = (at: Date) => runTick({ ...env.deps, now: () => at } satisfies Deps);

/**
 * Runs `between` once, right after the first DynamoDB call that `matches` has answered and before
 * its caller sees the answer: a deterministic interleaving of two real writers on DynamoDB Local
 * (no fault is injected; only the order is fixed).
 */
function interleave(matches: (command: string, input: Record<string, unknown>) => boolean, between: () => Promise<void>) {
  let armed = true;
  const name = `interleave-${Math.random()}`;
  env.deps.ddb.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      if (armed && matches(context.commandName ?? "", args.input as Record<string, unknown>)) {
        armed = false;
        await between();
      }
      return out;
    },
    { step: "initialize", name },
  );
  return { done: () => !armed, remove: () => env.deps.ddb.middlewareStack.remove(name) };
}

// The client's own command names (GetItemCommand for the document client's GetCommand).
const isScheduleRead = (command: string, input: Record<string, unknown>) =>
  command === "GetItemCommand" && (input.Key as { sk?: unknown } | undefined)?.sk === "SCH";
const isDueQuery = (command: string, input: Record<string, unknown>) =>
  command === "QueryCommand" && JSON.stringify(input.ExpressionAttributeValues ?? {}).includes('"SCHED"');

describe("a schedule PUT racing a dispatcher tick", () => {
  it("the tick records its run between the PUT's read and its write: the PUT keeps last_run_at and last_job_id", async () => {
    // prepare: a 02:15 schedule; the dispatcher ticked at 02:14 tomorrow
    expect((await put({ cron_hour: 2, cron_minute: 15, is_active: true })).status).toBe(200);
    await tickAt(tomorrowAt(1, 2, 14));

    // act: the user's PUT reads the schedule, the 02:15 tick starts its run, then the PUT writes
    let tick: TickReport | undefined;
    const hook = interleave(isScheduleRead, async () => {
      tick = await tickAt(tomorrowAt(1, 2, 15, 5));
    });
    const res = await put({ cron_hour: 2, cron_minute: 15, is_active: true, label: "nightly", retention_days: 30 });
    hook.remove();

    // assess: both writers' fields survive
    expect(hook.done()).toBe(true);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(tick?.errors).toEqual([]);
    expect(tick?.schedules?.created, JSON.stringify(tick?.schedules)).toBe(1);
    const jobId = tick!.schedules!.jobIds[0];
    const expected = { label: "nightly", retention_days: 30, last_job_id: jobId, last_run_at: tomorrowAt(1, 2, 15, 5).toISOString().replace(".000Z", "Z") };
    expect((await body(res)).scheduled_backup).toMatchObject(expected);
    expect((await body(await get())).scheduled_backups[0]).toMatchObject(expected);
  });

  it("the PUT lands between the tick's read of due schedules and its run: the run is recorded and the user's change kept", async () => {
    expect((await put({ cron_hour: 3, cron_minute: 30, is_active: true })).status).toBe(200);
    await tickAt(tomorrowAt(2, 3, 29));

    const hook = interleave(isDueQuery, async () => {
      const res = await put({ cron_hour: 3, cron_minute: 30, is_active: true, label: "changed mid-tick", retention_days: 9 });
      expect(res.status, await res.clone().text()).toBe(200);
    });
    const tick = await tickAt(tomorrowAt(2, 3, 30, 5));
    hook.remove();

    expect(hook.done()).toBe(true);
    expect(tick.errors).toEqual([]);
    expect(tick.schedules?.created, JSON.stringify(tick.schedules)).toBe(1);
    expect((await body(await get())).scheduled_backups[0]).toMatchObject({
      label: "changed mid-tick",
      retention_days: 9,
      cron_hour: 3,
      cron_minute: 30,
      last_job_id: tick.schedules!.jobIds[0],
    });
  });

  it("concurrent PUTs of a new schedule create one schedule (one id), whichever wins", async () => {
    const other = await env.seedTenant({ database: "race_db2" });
    const otherKey = await other.key();
    const send = (label: string) =>
      env.app().request(`/v1/projects/${other.projectId}/scheduled-backups/default`, {
        method: "PUT",
        headers: { authorization: `Bearer ${otherKey}`, "content-type": "application/json" },
        body: JSON.stringify({ cron_hour: 1, cron_minute: 0, is_active: true, label }),
      });
    const answers = await Promise.all(["a", "b", "c", "d"].map(send));
    for (const a of answers) expect(a.status, await a.clone().text()).toBe(200);
    const ids = new Set(await Promise.all(answers.map(async (a) => (await body(a)).scheduled_backup.id)));
    expect(ids.size).toBe(1);
  });
});
