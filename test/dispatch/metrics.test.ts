import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emfLines } from "./support.ts";
import { putSchedule } from "../../core/backups/schedules.ts";
import { iso } from "../../core/deps.ts";
import { dispatchMetrics, publishTickMetrics } from "../../core/dispatch/metrics.ts";
import type { TickReport } from "../../core/dispatch/handler.ts";
import { findStaleProjects } from "../../core/dispatch/staleness.ts";
import { getProject } from "../../core/orgs/orgs.ts";
import { createTestEnv, type TestEnv } from "../support/env.ts";
import { fakeBackup } from "../support/fake-backup.ts";

const HOUR = 3_600_000;
let env: TestEnv;
const projects: Record<"fresh" | "old" | "new" | "paused", string> = { fresh: "", old: "", new: "", paused: "" };

beforeAll(async () => {
  env = await createTestEnv();
  for (const name of Object.keys(projects) as (keyof typeof projects)[]) {
    const tenant = await env.seedTenant({ database: "postgres" });
    projects[name] = tenant.projectId;
    const project = (await getProject(env.deps, tenant.projectId))!;
    await putSchedule(env.deps, project, { cron_hour: 3, cron_minute: 0, is_active: name !== "paused" });
  }
  const now = Date.now();
  await fakeBackup(env, projects.fresh, { verified_at: iso(new Date(now - 2 * HOUR)) });
  await fakeBackup(env, projects.old, { verified_at: iso(new Date(now - 30 * HOUR)) });
  // A newer backup that failed its verification does not make a project fresh.
  await fakeBackup(env, projects.old, { verification_state: "failed", verified_at: null });
  await fakeBackup(env, projects.paused, { verified_at: iso(new Date(now - 100 * HOUR)) });
});
afterAll(async () => {
  await env?.cleanup();
});

const tick = (errors: TickReport["errors"]): TickReport => ({ at: new Date().toISOString(), errors, phases: {}, ms: 1 });

describe("the dispatcher's metrics", () => {
  it("finds the projects whose active schedule has no verified backup in 26 hours", async () => {
    const report = await findStaleProjects(env.deps);
    expect(report.scheduled).toBe(3); // the paused schedule is not in the active index
    expect(report.stale).toEqual([projects.old]); // the new schedule has not had its first day yet
    const tomorrow = await findStaleProjects({ ...env.deps, now: () => new Date(Date.now() + 27 * HOUR) });
    expect(tomorrow.stale.sort()).toEqual([projects.fresh, projects.old, projects.new].sort());
  });

  it("publishes staleness and phase failures through Powertools Metrics (EMF) after a tick", async () => {
    const [emf] = await emfLines(() => publishTickMetrics(env.deps, tick([{ phase: "retention", error: "boom" }]), dispatchMetrics()));
    expect(emf._aws.CloudWatchMetrics[0]).toMatchObject({
      Namespace: "CapyDB",
      Dimensions: [["service"]],
      Metrics: expect.arrayContaining([
        { Name: "StaleProjects", Unit: "Count" },
        { Name: "DispatchPhaseFailures", Unit: "Count" },
      ]),
    });
    expect(emf).toMatchObject({ service: "dispatch", StaleProjects: 1, DispatchPhaseFailures: 1 });
  });

  it("leaves staleness out rather than reporting 0 when it cannot be computed", async () => {
    const broken = { ...env.deps, table: "no-such-table" };
    const [emf] = await emfLines(() => publishTickMetrics(broken, tick([]), dispatchMetrics()));
    expect(emf).toMatchObject({ DispatchPhaseFailures: 0 });
    expect(emf).not.toHaveProperty("StaleProjects");
  });
});
