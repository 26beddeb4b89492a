import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runTick } from "../../core/dispatch/handler.ts";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import { startWorkerLoop } from "../../local/loops.ts";
import { withClock } from "./support.ts";

let env: TestEnv;
let tenant: Tenant;
let key: string;
beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant();
  key = await tenant.key();
});
afterAll(async () => env?.cleanup());

async function get(path: string): Promise<{ status: number; body: any }> {
  const res = await env.app().request(path, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: await res.json() };
}

describe("end to end on the local stack", () => {
  it("a schedule set for the next minute produces exactly one verified backup, and the schedule shows its last run", async () => {
    // prepare: the dispatcher's clock one minute behind the wall clock, so that the minute after
    // "now" (for it) is the wall clock's current minute and the worker (wall clock) runs the job
    // at once. Its first tick sets the watermark; then the schedule is set for its next minute.
    const t1 = new Date(Date.now() - 60_000);
    const t2 = new Date(t1.getTime() + 60_000);
    const tick = async (at: Date) => {
      const r = await runTick(withClock(env.deps, at));
      expect(r.errors, JSON.stringify(r.errors)).toEqual([]);
      return r;
    };
    await tick(t1);
    const put = await env.app({ deps: withClock(env.deps, t1) }).request(`/v1/projects/${tenant.projectId}/scheduled-backups/default`, {
      method: "PUT",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ cron_hour: t2.getUTCHours(), cron_minute: t2.getUTCMinutes(), is_active: true, label: "nightly" }),
    });
    expect(put.status, await put.clone().text()).toBe(200);

    // act: the next minute's tick (and a double tick), with the local stack's worker loop running
    const worker = startWorkerLoop(env.deps, createWorkerHandler(env.deps), { concurrency: 1, waitSeconds: 1 });
    let jobId: string | undefined;
    let settled: any;
    try {
      const fired = await tick(t2);
      expect(fired.schedules?.created).toBe(1);
      jobId = fired.schedules!.jobIds[0];
      expect((await tick(new Date(t2.getTime() + 5_000))).schedules?.created ?? 0).toBe(0);

      const deadline = Date.now() + 150_000;
      while (Date.now() < deadline) {
        const job = (await get(`/v1/jobs/${jobId}`)).body.job;
        if (job?.state === "completed" || job?.state === "failed") {
          settled = job;
          break;
        }
        settled = job;
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      await worker.stop();
    }

    // assess
    expect(settled?.state, `the scheduled job did not complete (is core/worker/run.ts implemented?): ${JSON.stringify(settled)}`).toBe("completed");
    const backups = await get(`/v1/projects/${tenant.projectId}/backups`);
    expect(backups.status).toBe(200);
    expect(backups.body.backups, JSON.stringify(backups.body)).toHaveLength(1);
    expect(backups.body.backups[0]).toMatchObject({ state: "completed", verification_state: "verified", label: "nightly" });
    expect(backups.body.backups[0].size_bytes).toBeGreaterThan(0);
    const schedules = await get(`/v1/projects/${tenant.projectId}/scheduled-backups`);
    expect(schedules.body.scheduled_backups).toHaveLength(1);
    expect(schedules.body.scheduled_backups[0]).toMatchObject({ last_job_id: jobId, last_run_at: expect.stringMatching(/Z$/) });
    const jobs = await get(`/v1/projects/${tenant.projectId}/jobs`);
    expect(jobs.body.jobs.map((j: { id: string; type: string }) => [j.id, j.type])).toEqual([[jobId, "project.backup"]]);
    // Later ticks that day create nothing more.
    expect((await tick(new Date(t2.getTime() + 60_000))).schedules?.created ?? 0).toBe(0);
  }, 240_000);
});
