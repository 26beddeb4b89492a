import type { TestEnv } from "../support/env.ts";
import { PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { freshEnvs, withClock } from "./support.ts";
import { projectRecord, records, scheduleRecord, writeAll } from "./seed.ts";
import { getSchedule } from "../../core/backups/schedules.ts";
import { keys } from "../../core/db/keys.ts";
import { getItem } from "../../core/db/store.ts";
import { iso } from "../../core/deps.ts";
import { defaultDispatchOptions, runTick, type TickReport } from "../../core/dispatch/handler.ts";
import { dispatchRetrySchema } from "../../core/dispatch/scheduler.ts";
import { newId } from "../../core/ids.ts";
import { claimJob, getJobItem, newJobItem, type JobItem } from "../../core/jobs/jobs.ts";
import { z } from "../../core/zod.ts";

const freshEnv = freshEnvs();

/**
 * The catch-up's sizes, explicit: 100,000 schedules; a 30 s tick budget (the deployed default; 10 s for the smaller run), of
 * which the schedules phase gets 40% or more; 500 schedules a page; 8 transactions of up to 25 runs
 * in flight. On a busy shared 2-core machine DynamoDB Local starts a few dozen runs a second, so
 * this takes the better part of an hour there (seeding 200,000 items included); the assertions are
 * on progress per tick and on the final state, never on time. `npm test` runs it with 5,000
 * schedules (the same ticks, pages and budget; a few minutes); `npm run test:catchup` runs the
 * full 100,000 (CAPYDB_CATCHUP_SCHEDULES sets any size).
 */
const SCHEDULES = Number(process.env.CAPYDB_CATCHUP_SCHEDULES ?? 5_000);
/**
 * The deployed 30 s budget for the full run; the smaller run (npm test's) gets 10 s, so that on a
 * quiet machine its 5,000 schedules still take several ticks, which is what the test is about.
 */
const BUDGET_MS = SCHEDULES >= 100_000 ? 30_000 : 10_000;
const MINUTE = 60_000;
/** The ticker was down from T - 24 h to T: its last tick ran at T - 24 h. */
const T = new Date("2026-11-26T12:00:20Z");
const tickOpts = { budgetMs: BUDGET_MS, scheduler: { ...defaultDispatchOptions.scheduler, pageSize: 500, concurrency: 8 } };

/**
 * Minutes after T that no schedule uses (12:01-17:59): the catch-up and the ticks after it happen
 * then, so no schedule's next day comes due during the test and each has exactly one run.
 */
const QUIET_MINUTES = 359;
/** The minute of the day of the i-th schedule: a quarter at 02:00 (a popular minute), the rest spread over the day outside the quiet minutes. */
function minuteOf(i: number): [number, number] {
  if (i % 4 === 0) return [2, 0];
  let m = i % (1440 - QUIET_MINUTES);
  if (m > 12 * 60) m += QUIET_MINUTES;
  return [Math.floor(m / 60), m % 60];
}
const FAILING = 4 * Math.floor(SCHEDULES / 8);

/** A job whose worker claimed it five minutes before T and died: its lease lapsed at T - 4 min. */
async function lostJob(env: TestEnv): Promise<JobItem> {
  const p = projectRecord("cls_lost");
  await writeAll(env.deps, records(p));
  const claimedAt = new Date(T.getTime() - 5 * MINUTE);
  const job = newJobItem(claimedAt, {
    id: newId("job", claimedAt),
    organization_id: p.organization_id,
    project_id: p.id,
    cluster_id: p.cluster_id,
    database_name: p.database_name,
    type: "project.backup",
    backup_id: newId("backup", claimedAt),
  });
  await env.deps.ddb.send(new PutCommand({ TableName: env.deps.table, Item: job }));
  const claimed = await claimJob(withClock(env.deps, claimedAt), job, "worker-that-dies", MINUTE);
  expect(claimed).toBeDefined();
  return claimed!;
}

/** Every pending job's schedule id (projected, paged). */
async function pendingJobSchedules(env: TestEnv): Promise<(string | null)[]> {
  const out: (string | null)[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const res = await env.deps.ddb.send(
      new QueryCommand({
        TableName: env.deps.table,
        IndexName: "gsi2",
        KeyConditionExpression: "gsi2pk = :p",
        ExpressionAttributeValues: { ":p": keys.jobStateIndex("pending") },
        ProjectionExpression: "schedule_id",
        // Small pages: each request stays far inside the client's 10 s timeout on a busy machine.
        Limit: 500,
        ExclusiveStartKey: start,
      }),
    );
    for (const i of res.Items ?? []) out.push((i.schedule_id as string | null | undefined) ?? null);
    start = res.LastEvaluatedKey;
  } while (start);
  return out;
}

const position = (r: TickReport) => `${r.schedules?.progress?.until ?? ""}|${r.schedules?.progress?.after ?? ""}`;

describe("the dispatcher cannot starve itself", () => {
  it(`${SCHEDULES.toLocaleString("en")} schedules all due after a 24 h outage catch up over successive ticks; the reaper runs on every tick; one always-failing schedule blocks nobody`, async () => {
    // prepare: the last tick before the outage, then the schedules (one of them on a project whose record is unreadable)
    const env = await freshEnv();
    const before = await runTick(withClock(env.deps, new Date(T.getTime() - 86_400_000)), tickOpts);
    expect(before.errors).toEqual([]);
    const seededAt = Date.now();
    const items: Record<string, unknown>[] = [];
    let failing: { projectId: string; scheduleId: string } | undefined;
    for (let i = 0; i < SCHEDULES; i++) {
      const [h, m] = minuteOf(i);
      const project = projectRecord(`cls_${i % 500}`);
      const schedule = scheduleRecord(project, h, m);
      const [projectItem, scheduleItem] = records(project, schedule);
      if (i === FAILING) {
        // Always fails: the project record misses its cluster, so no run can be built from it.
        delete projectItem!.cluster_id;
        failing = { projectId: project.id, scheduleId: schedule.id };
      }
      items.push(projectItem!, scheduleItem!);
    }
    expect(failing).toBeDefined();
    await writeAll(env.deps, items);
    items.length = 0;
    const seedMs = Date.now() - seededAt;

    // act: the ticker is back at T and ticks every minute until the window is covered
    const ticks: TickReport[] = [];
    let lost: JobItem | undefined;
    let lostRecoveredAt: number | undefined;
    for (let k = 0; k < QUIET_MINUTES - 30; k++) {
      const now = new Date(T.getTime() + k * MINUTE);
      const r = await runTick(withClock(env.deps, now), tickOpts);
      ticks.push(r);
      console.info(
        `tick ${k}: ${r.schedules?.created} started, ${r.schedules?.alreadyRan} already ran, ${r.schedules?.setAside} set aside, reaper retried ${r.reaper?.retried} requeued ${r.reaper?.requeued}, ${r.ms} ms (schedules ${r.phases.schedules?.ms} of ${r.phases.schedules?.givenMs} ms), progress ${position(r)}`,
      );
      // No phase threw, and none ran past its share of the budget (that is an error of the tick).
      expect(r.errors, JSON.stringify(r.errors)).toEqual([]);
      // The reaper ran on this tick, catch-up or not.
      expect(r.reaper, `tick ${k}`).toBeDefined();
      if (lost && lostRecoveredAt === undefined && r.reaper!.jobIds.includes(lost.id)) lostRecoveredAt = k;
      if (k === 0) lost = await lostJob(env); // a worker died while the catch-up had only begun
      if (!r.schedules!.unfinished) break;
      // A tick that ran out of time still started runs and moved the window forward.
      expect(r.schedules!.created, `tick ${k}`).toBeGreaterThan(0);
      if (k > 0) expect(position(r) > position(ticks[k - 1]!), `tick ${k}: ${position(r)} after ${position(ticks[k - 1]!)}`).toBe(true);
    }

    // assess: the catch-up took several ticks and finished
    const last = ticks.at(-1)!;
    expect(ticks.length).toBeGreaterThan(2);
    expect(last.schedules).toMatchObject({ unfinished: false, progress: { until: last.schedules!.window!.to, after: null } });
    // The lost job was recovered on the tick after it was lost, while the catch-up was still running.
    expect(lostRecoveredAt).toBe(1);
    expect(ticks[1]!.schedules!.unfinished).toBe(true);
    expect(await getJobItem(env.deps, lost!.id)).toMatchObject({ state: "pending", attempts: 1, retry_classification: "transient" });
    // Exactly one job for every schedule but the failing one (the lost job has no schedule).
    const started = ticks.reduce((n, r) => n + r.schedules!.created, 0);
    expect(started).toBe(SCHEDULES - 1);
    const pending = await pendingJobSchedules(env);
    const scheduled = pending.filter((s): s is string => s !== null);
    expect(scheduled.length).toBe(SCHEDULES - 1);
    expect(new Set(scheduled).size).toBe(SCHEDULES - 1);
    expect(scheduled).not.toContain(failing!.scheduleId);
    expect(pending.length - scheduled.length).toBe(1);

    // The failing schedule was set aside once, recorded on the schedule, and is retried on its own
    // with backoff (1, 2, 4 ... minutes) while later ticks run normally.
    expect(ticks.reduce((n, r) => n + r.schedules!.setAside, 0)).toBe(1);
    expect(ticks.length + 30).toBeLessThan(QUIET_MINUTES);
    for (const minutes of [3, 10, 30]) {
      const r = await runTick(withClock(env.deps, new Date(T.getTime() + (ticks.length + minutes) * MINUTE)), tickOpts);
      expect(r.errors).toEqual([]);
      expect(r.schedules).toMatchObject({ created: 0, retried: 0, unfinished: false });
    }
    const stored = await getItem(
      env.deps,
      z.object({ dispatch_retry: dispatchRetrySchema, gsi1pk: z.string(), last_job_id: z.null() }).passthrough(),
      keys.schedule(failing!.projectId),
    );
    expect(stored?.gsi1pk).toBe(keys.scheduleRetryIndex);
    expect(stored?.dispatch_retry).toMatchObject({
      at: iso(new Date("2026-11-26T02:00:00Z")),
      error: expect.stringMatching(/project record is unreadable|cluster_id/),
    });
    expect(stored!.dispatch_retry.attempts).toBeGreaterThanOrEqual(3);
    expect((await getSchedule(env.deps, failing!.projectId))?.last_job_id).toBeNull();

    console.info(
      `catch-up of ${SCHEDULES.toLocaleString("en")} schedules: seeded in ${seedMs} ms; ${ticks.length} ticks of budget ${BUDGET_MS} ms (${ticks.map((r) => r.schedules!.created).join(", ")} started); tick ms ${ticks.map((r) => r.ms).join(", ")}`,
    );
  }, 7_200_000);
});
