import { z } from "zod";
import { newBackupRecords } from "../backups/backups.ts";
import { minuteOfDay, scheduleItem, type ScheduleItem } from "../backups/schedules.ts";
import { keys, ttlAt } from "../db/keys.ts";
import { getItem, putItemIf, queryAll, transactWriteIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { enqueueJobs } from "../jobs/queue.ts";
import { getProject, type Project } from "../orgs/orgs.ts";
import { errorText, mapSettled } from "../concurrency.ts";

const MINUTE = 60_000;
const DAY = 86_400_000;
/** SQS's DelaySeconds ceiling; later starts wait in the pending index for the reaper. */
const MAX_SQS_DELAY_S = 900;
/** How long a (schedule, date) guard is kept: longer than the 24 h look-back, TTL is a safety net. */
const RUN_GUARD_MS = 7 * DAY;

export interface SchedulerOptions {
  /** Gap between two starts on the same cluster within one tick (catch-up or a popular minute). */
  staggerSeconds: number;
  /** Parallel schedule transactions. */
  concurrency: number;
}

export interface ScheduleTickReport {
  /** The minutes this tick covered: `from` exclusive, `to` inclusive; null when already covered. */
  window: { from: string; to: string } | null;
  /** Schedule items read from the index. */
  read: number;
  created: number;
  /** The (schedule, date) guard existed, or the schedule changed/deactivated meanwhile. */
  alreadyRan: number;
  /** Rewritten after its minute had passed, or the project is gone: nothing to catch up. */
  skipped: number;
  /** Created with a start later than SQS can delay: the reaper enqueues it when due. */
  deferred: number;
  failed: number;
  jobIds: string[];
}

const watermarkItem = z.object({ until: z.string() });

export const floorMinute = (d: Date) => new Date(Math.floor(d.getTime() / MINUTE) * MINUTE);
const minuteKey = (d: Date) => minuteOfDay(d.getUTCHours(), d.getUTCMinutes());
const utcDate = (d: Date) => d.toISOString().slice(0, 10);

/**
 * The minutes a tick at `now` must cover: after the watermark (exclusive) up to the current
 * minute (inclusive), never more than one day, so each minute of the day appears at most once and
 * an outage yields one run per schedule, not one per missed minute. A first tick covers its own
 * minute only.
 */
export function dispatchWindow(watermark: Date | undefined, now: Date): { from: Date; to: Date } | undefined {
  const to = floorMinute(now);
  let from = watermark ? floorMinute(watermark) : new Date(to.getTime() - MINUTE);
  if (to.getTime() <= from.getTime()) return undefined;
  if (to.getTime() - from.getTime() > DAY) from = new Date(to.getTime() - DAY);
  return { from, to };
}

/** gsi2sk ranges (`HH:MM#<sch>`) of the window; two when it wraps past midnight. */
export function indexRanges(window: { from: Date; to: Date }): [string, string][] {
  if (window.to.getTime() - window.from.getTime() >= DAY) return [["00:00#", "23:59#~"]];
  const first = minuteKey(new Date(window.from.getTime() + MINUTE));
  const last = minuteKey(window.to);
  return first <= last
    ? [[`${first}#`, `${last}#~`]]
    : [
        [`${first}#`, "23:59#~"],
        ["00:00#", `${last}#~`],
      ];
}

/** The instant in (from, to] at which a schedule at hour:minute was due. */
export function occurrence(windowEnd: Date, hour: number, minute: number): Date {
  const d = Date.UTC(windowEnd.getUTCFullYear(), windowEnd.getUTCMonth(), windowEnd.getUTCDate(), hour, minute);
  return new Date(d > windowEnd.getTime() ? d - DAY : d);
}

async function readWatermark(deps: Pick<Deps, "ddb" | "table">): Promise<Date | undefined> {
  const item = await getItem(deps, watermarkItem, keys.dispatchWatermark);
  return item ? new Date(item.until) : undefined;
}

/** Moves the watermark forward only: a slower concurrent tick never moves it back. */
async function advanceWatermark(deps: Pick<Deps, "ddb" | "table" | "now">, to: Date): Promise<void> {
  await putItemIf(
    deps,
    { ...keys.dispatchWatermark, until: iso(to), updated_at: iso(deps.now()) },
    { condition: "attribute_not_exists(pk) OR #until < :to", names: { "#until": "until" }, values: { ":to": iso(to) } },
  );
}

async function dueSchedules(deps: Pick<Deps, "ddb" | "table">, window: { from: Date; to: Date }): Promise<ScheduleItem[]> {
  const out: ScheduleItem[] = [];
  for (const [lo, hi] of indexRanges(window)) {
    out.push(
      ...(await queryAll(deps, scheduleItem, {
        IndexName: "gsi2",
        KeyConditionExpression: "gsi2pk = :p AND gsi2sk BETWEEN :lo AND :hi",
        ExpressionAttributeValues: { ":p": keys.scheduleIndex, ":lo": lo, ":hi": hi },
      })),
    );
  }
  return out;
}

/**
 * One scheduled run in one transaction: the (schedule, date) guard (the once-a-day rule), the
 * pending Backup, its pending Job, and the schedule's `last_run_at`/`last_job_id`. The schedule
 * update is conditioned on the schedule still being active at the minute that was read from the
 * (eventually consistent) index. Undefined when the guard or that condition says no.
 */
export async function startScheduledRun(
  deps: Pick<Deps, "ddb" | "table">,
  schedule: ScheduleItem,
  project: Project,
  date: string,
  now: Date,
  availableAt: Date,
): Promise<string | undefined> {
  const { backupItem, job } = newBackupRecords(project, now, {
    retentionDays: schedule.retention_days,
    label: schedule.label,
    scheduleId: schedule.id,
    availableAt,
  });
  const jobId = job.id;
  const started = await transactWriteIf(deps, [
      {
        Put: {
          TableName: deps.table,
          Item: {
            ...keys.scheduleRun(schedule.id, date),
            item_type: "schedule_run",
            schedule_id: schedule.id,
            project_id: project.id,
            date,
            job_id: jobId,
            created_at: iso(now),
            ttl: ttlAt(new Date(now.getTime() + RUN_GUARD_MS)),
          },
          ConditionExpression: "attribute_not_exists(pk)",
        },
      },
      { Put: { TableName: deps.table, Item: backupItem } },
      { Put: { TableName: deps.table, Item: job } },
      {
        Update: {
          TableName: deps.table,
          Key: keys.schedule(project.id),
          UpdateExpression: "SET last_run_at = :at, last_job_id = :job",
          ConditionExpression: "attribute_exists(pk) AND id = :id AND is_active = :yes AND cron_hour = :h AND cron_minute = :m",
          ExpressionAttributeValues: { ":at": iso(now), ":job": jobId, ":id": schedule.id, ":yes": true, ":h": schedule.cron_hour, ":m": schedule.cron_minute },
        },
      },
    ]);
  // The run guard exists (another tick started it) or the schedule changed meanwhile.
  return started ? jobId : undefined;
}

/**
 * Starts the backups of every schedule due since the watermark. Each due schedule costs one
 * project read and one transaction; the index query reads only due schedules. Starts on the same
 * cluster are staggered (`staggerSeconds` apart, earliest missed first) so a catch-up after an
 * outage, or a popular minute, does not dump all of a cluster's databases at once. Messages are
 * sent after the transactions committed, in batches per delay; a failed send is left to the reaper.
 */
export async function dispatchDueSchedules(deps: Deps, opts: SchedulerOptions): Promise<ScheduleTickReport> {
  const now = deps.now();
  const report: ScheduleTickReport = { window: null, read: 0, created: 0, alreadyRan: 0, skipped: 0, deferred: 0, failed: 0, jobIds: [] };
  const window = dispatchWindow(await readWatermark(deps), now);
  if (!window) return report;
  report.window = { from: iso(window.from), to: iso(window.to) };

  const schedules = await dueSchedules(deps, window);
  report.read = schedules.length;

  const due: { schedule: ScheduleItem; at: Date }[] = [];
  for (const schedule of schedules) {
    const at = occurrence(window.to, schedule.cron_hour, schedule.cron_minute);
    // Written (created, re-timed or re-activated) after its minute of that day had passed: it
    // was not due then, so there is no missed run to catch up; it runs at its next minute.
    if (Date.parse(schedule.updated_at) >= at.getTime() + MINUTE) report.skipped++;
    else due.push({ schedule, at });
  }

  let holdWatermark = false;
  const projects = await mapSettled(due, opts.concurrency, (d) => getProject(deps, d.schedule.project_id));
  const byCluster = new Map<string, { schedule: ScheduleItem; at: Date; project: Project }[]>();
  projects.forEach((r, i) => {
    const d = due[i]!;
    if (r.status === "rejected") {
      holdWatermark = true;
      report.failed++;
      deps.log.error("dispatcher: could not read the project of a due schedule", { schedule_id: d.schedule.id, error: errorText(r.reason) });
    } else if (!r.value) {
      report.skipped++;
      deps.log.warn("dispatcher: schedule of a missing project", { schedule_id: d.schedule.id, project_id: d.schedule.project_id });
    } else {
      const list = byCluster.get(r.value.cluster_id) ?? [];
      list.push({ ...d, project: r.value });
      byCluster.set(r.value.cluster_id, list);
    }
  });

  const runs: { schedule: ScheduleItem; at: Date; project: Project; delay: number }[] = [];
  for (const list of byCluster.values()) {
    list.sort((a, b) => a.at.getTime() - b.at.getTime() || a.schedule.id.localeCompare(b.schedule.id));
    list.forEach((r, k) => runs.push({ ...r, delay: k * opts.staggerSeconds }));
  }

  const results = await mapSettled(runs, opts.concurrency, (r) =>
    startScheduledRun(deps, r.schedule, r.project, utcDate(r.at), now, new Date(now.getTime() + r.delay * 1000)),
  );
  const toSend = new Map<number, string[]>();
  results.forEach((res, i) => {
    const run = runs[i]!;
    if (res.status === "rejected") {
      holdWatermark = true;
      report.failed++;
      deps.log.error("dispatcher: could not start a scheduled backup", { schedule_id: run.schedule.id, error: errorText(res.reason) });
    } else if (!res.value) {
      report.alreadyRan++;
    } else {
      report.created++;
      report.jobIds.push(res.value);
      if (run.delay > MAX_SQS_DELAY_S) report.deferred++;
      else toSend.set(run.delay, [...(toSend.get(run.delay) ?? []), res.value]);
    }
  });

  for (const [delay, ids] of toSend) {
    try {
      await enqueueJobs(deps, ids, delay);
    } catch (err) {
      deps.log.warn("dispatcher: jobs committed but not enqueued; the reaper will enqueue them", { jobs: ids.length, error: errorText(err) });
    }
  }

  // A failed read or write keeps the watermark so the next tick covers these minutes again (the
  // guards make that harmless); the one-day cap bounds how far back it can reach.
  if (!holdWatermark) await advanceWatermark(deps, window.to);
  return report;
}
