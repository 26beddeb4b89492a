import { z } from "../zod.ts";
import { newBackupRecords } from "../backups/backups.ts";
import { minuteOfDay, scheduleItem, type ScheduleItem } from "../backups/schedules.ts";
import { keys, ttlAt } from "../db/keys.ts";
import { batchGetItems, keyOf } from "../db/batch.ts";
import type { TransactWriteCommandInput } from "@aws-sdk/lib-dynamodb";
import { getItem, putItemIf, queryAll, queryPage, transactWriteIf, transactWriteRefusals, updateItemIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { enqueueJobs } from "../jobs/queue.ts";
import { getProject, projectItem, type Project } from "../orgs/orgs.ts";
import { redact } from "../redact.ts";
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
  /** Transactions in flight (each starts up to 25 runs). */
  concurrency: number;
  /** Schedules read from the index per page; the window's progress is saved after every page. */
  pageSize: number;
  /** Set-aside schedules retried per tick, each on its own after its backoff. */
  retryLimit: number;
}

export const defaultSchedulerOptions: SchedulerOptions = { staggerSeconds: 30, concurrency: 8, pageSize: 500, retryLimit: 25 };

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
  /** Runs that could not start this tick (first tries and retries of set-aside schedules). */
  failed: number;
  /** Failing schedules recorded on the schedule and set aside to be retried on their own. */
  setAside: number;
  /** Set-aside schedules whose retry started their backup this tick. */
  retried: number;
  /** How far the window is handled: every run due up to `until`, and in the next minute up to the schedule `after`. */
  progress: { until: string; after: string | null } | null;
  /** The phase's share of the tick ran out before the window was covered: the next tick carries on from `progress`. */
  unfinished: boolean;
  jobIds: string[];
}

const watermarkItem = z.object({ until: z.string(), after: z.string().nullish() });

/** What a schedule that could not start its run carries until a retry of its own succeeds. */
export const dispatchRetrySchema = z.object({
  /** The missed occurrence (its date is the run's date). */
  at: z.string(),
  attempts: z.number().int().min(1),
  next_at: z.string(),
  error: z.string(),
});
const setAsideSchedule = scheduleItem.extend({ dispatch_retry: dispatchRetrySchema.nullish() });

const rawItem = z.record(z.string(), z.unknown());

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

/**
 * gsi2sk ranges (`HH:MM#<sch>`) of the window, in the order its minutes happened: two when it
 * wraps past midnight (a whole day wraps too, unless it ends at 23:59). Reading them in order is
 * what lets a tick that runs out of time save how far it got.
 */
export function indexRanges(window: { from: Date; to: Date }): [string, string][] {
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

type Position = { until: Date; after?: string };

async function readWatermark(deps: Pick<Deps, "ddb" | "table">): Promise<Position | undefined> {
  const item = await getItem(deps, watermarkItem, keys.dispatchWatermark);
  return item ? { until: new Date(item.until), ...(item.after ? { after: item.after } : {}) } : undefined;
}

/**
 * Moves the watermark forward only: a slower concurrent tick never moves it back. A position is
 * `until` (every run due up to that minute handled) and, within the next minute, `after` (the
 * last schedule of that minute handled, by index key); no `after` comes before any `after`.
 */
async function advanceWatermark(deps: Pick<Deps, "ddb" | "table" | "now">, to: Position): Promise<void> {
  const until = iso(to.until);
  await putItemIf(
    deps,
    { ...keys.dispatchWatermark, until, ...(to.after ? { after: to.after } : {}), updated_at: iso(deps.now()) },
    to.after
      ? {
          condition: "attribute_not_exists(pk) OR #until < :to OR (#until = :to AND (attribute_not_exists(#after) OR #after < :after))",
          names: { "#until": "until", "#after": "after" },
          values: { ":to": until, ":after": to.after },
        }
      : { condition: "attribute_not_exists(pk) OR #until < :to", names: { "#until": "until" }, values: { ":to": until } },
  );
}

/** The instant of a range's last minute (its `hi` key is `HH:MM#~`). */
function rangeEnd(window: { to: Date }, hi: string): Date {
  return occurrence(window.to, Number(hi.slice(0, 2)), Number(hi.slice(3, 5)));
}

type RunWrites = NonNullable<TransactWriteCommandInput["TransactItems"]>;

/**
 * The writes of one scheduled run, all or nothing: the (schedule, date) guard (the once-a-day
 * rule), the pending Backup, its pending Job, and the schedule's `last_run_at`/`last_job_id` (its
 * retry record, if it was set aside, goes). The schedule update is conditioned on the schedule
 * still being active at the minute that was read from the (eventually consistent) index.
 */
function runWrites(table: string, schedule: ScheduleItem, project: Project, date: string, now: Date, availableAt: Date): { jobId: string; writes: RunWrites } {
  const { backupItem, job } = newBackupRecords(project, now, {
    retentionDays: schedule.retention_days,
    label: schedule.label,
    scheduleId: schedule.id,
    availableAt,
  });
  const jobId = job.id;
  return {
    jobId,
    writes: [
      {
        Put: {
          TableName: table,
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
      { Put: { TableName: table, Item: backupItem } },
      { Put: { TableName: table, Item: job } },
      {
        Update: {
          TableName: table,
          Key: keys.schedule(project.id),
          // A run that starts also ends any retry the schedule was set aside for.
          UpdateExpression: "SET last_run_at = :at, last_job_id = :job REMOVE dispatch_retry, gsi1pk, gsi1sk",
          ConditionExpression: "attribute_exists(pk) AND id = :id AND is_active = :yes AND cron_hour = :h AND cron_minute = :m",
          ExpressionAttributeValues: { ":at": iso(now), ":job": jobId, ":id": schedule.id, ":yes": true, ":h": schedule.cron_hour, ":m": schedule.cron_minute },
        },
      },
    ],
  };
}

/**
 * One scheduled run in one transaction (see runWrites). Undefined when the guard (another tick
 * started it) or the schedule's condition (it changed meanwhile) says no.
 */
export async function startScheduledRun(
  deps: Pick<Deps, "ddb" | "table">,
  schedule: ScheduleItem,
  project: Project,
  date: string,
  now: Date,
  availableAt: Date,
): Promise<string | undefined> {
  const { jobId, writes } = runWrites(deps.table, schedule, project, date, now, availableAt);
  return (await transactWriteIf(deps, writes)) ? jobId : undefined;
}

/** Runs per transaction: 4 writes each, DynamoDB's ceiling is 100 a transaction. */
export const RUNS_PER_TRANSACTION = 25;

type RunSpec = { schedule: ScheduleItem; project: Project; date: string; availableAt: Date };

/**
 * Up to 25 runs in one transaction (a catch-up's throughput: one round trip instead of 25). A
 * run whose guard or schedule condition fails is answered `undefined` (already ran, or changed) and
 * the others are tried again without it; anything else (contention, throttling, a run DynamoDB
 * refuses) falls back to one transaction per run, so one bad run is isolated and the others start.
 * Each result is the job id, undefined, or the error of that run alone.
 */
export async function startScheduledRuns(
  deps: Pick<Deps, "ddb" | "table">,
  runs: readonly RunSpec[],
  now: Date,
): Promise<PromiseSettledResult<string | undefined>[]> {
  const out: PromiseSettledResult<string | undefined>[] = new Array(runs.length);
  let open = runs.map((r, i) => ({ i, ...runWrites(deps.table, r.schedule, r.project, r.date, now, r.availableAt) }));
  while (open.length > 1) {
    const writes = open.flatMap((o) => o.writes);
    let failed: number[];
    try {
      failed = await transactWriteRefusals(deps, writes);
    } catch {
      break;
    }
    if (!failed.length) {
      for (const o of open) out[o.i] = { status: "fulfilled", value: o.jobId };
      return out;
    }
    // Each run's writes are contiguous: a run is refused when any of its items' conditions failed.
    let from = 0;
    const refused = open.filter((o) => {
      const to = from + o.writes.length;
      const hit = failed.some((i) => i >= from && i < to);
      from = to;
      return hit;
    });
    for (const o of refused) out[o.i] = { status: "fulfilled", value: undefined };
    open = open.filter((o) => !refused.includes(o));
  }
  const alone = await mapSettled(open, 4, (o) =>
    startScheduledRun(deps, runs[o.i]!.schedule, runs[o.i]!.project, runs[o.i]!.date, now, runs[o.i]!.availableAt),
  );
  for (const [k, o] of open.entries()) out[o.i] = alone[k]!;
  return out;
}

const RETRY_BASE_MS = MINUTE;
const RETRY_MAX_MS = 60 * MINUTE;
/** 1, 2, 4 ... minutes, at most an hour, after the n-th failed try. */
export const retryDelayMs = (attempts: number) => Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, attempts - 1));

/**
 * Records a run that could not start on its schedule (`dispatch_retry`: the occurrence, the tries,
 * when to try next, why) and puts the schedule on the retry index, so the window moves on without
 * it and the run is retried on its own. False when the schedule is gone or was replaced.
 */
async function setAside(deps: Pick<Deps, "ddb" | "table">, schedule: ScheduleItem, at: Date, attempts: number, error: unknown, now: Date): Promise<boolean> {
  const next = new Date(now.getTime() + retryDelayMs(attempts));
  const retry: z.infer<typeof dispatchRetrySchema> = { at: iso(at), attempts, next_at: iso(next), error: redact(errorText(error)).slice(0, 500) };
  const done = await updateItemIf(deps, z.unknown(), {
    Key: keys.schedule(schedule.project_id),
    UpdateExpression: "SET dispatch_retry = :r, gsi1pk = :ip, gsi1sk = :is",
    ConditionExpression: "attribute_exists(pk) AND id = :id",
    ExpressionAttributeValues: { ":r": retry, ":ip": keys.scheduleRetryIndex, ":is": `${retry.next_at}#${schedule.id}`, ":id": schedule.id },
  });
  return done !== undefined;
}

/** Ends a retry that has nothing left to do (the run exists, the schedule changed, it is a day late). */
async function clearRetry(deps: Pick<Deps, "ddb" | "table">, schedule: ScheduleItem, at: string): Promise<void> {
  await updateItemIf(deps, z.unknown(), {
    Key: keys.schedule(schedule.project_id),
    UpdateExpression: "REMOVE dispatch_retry, gsi1pk, gsi1sk",
    ConditionExpression: "attribute_exists(pk) AND dispatch_retry.#at = :at",
    ExpressionAttributeNames: { "#at": "at" },
    ExpressionAttributeValues: { ":at": at },
  });
}

/** What a tick shares between its pages: the clock, its deadline, the per-cluster stagger. */
interface TickState {
  deps: Deps;
  opts: SchedulerOptions;
  now: Date;
  deadline: number;
  report: ScheduleTickReport;
  /** Starts given to each cluster so far this tick. */
  clusterStarts: Map<string, number>;
}

/** The delay of the next start on `clusterId` this tick, in seconds. */
function nextDelay(t: TickState, clusterId: string): number {
  const k = t.clusterStarts.get(clusterId) ?? 0;
  t.clusterStarts.set(clusterId, k + 1);
  return k * t.opts.staggerSeconds;
}

/** Sends the started jobs' messages, grouped by delay; a failed send is left to the reaper. */
async function sendStarted(t: TickState, started: { jobId: string; delay: number }[]): Promise<void> {
  const byDelay = new Map<number, string[]>();
  for (const s of started) {
    if (s.delay > MAX_SQS_DELAY_S) t.report.deferred++;
    else byDelay.set(s.delay, [...(byDelay.get(s.delay) ?? []), s.jobId]);
  }
  for (const [delay, ids] of byDelay) {
    try {
      await enqueueJobs(t.deps, ids, delay);
    } catch (err) {
      t.deps.log.warn("dispatcher: jobs committed but not enqueued; the reaper will enqueue them", { jobs: ids.length, error: errorText(err) });
    }
  }
}

type Outcome = "created" | "alreadyRan" | "skipped" | "setAside" | "failed" | "later";

/**
 * One page of due schedules, in index order. Cheap reads first (one BatchGet for the page's
 * (schedule, date) guards, one for its projects): a schedule that already ran that day costs no
 * transaction. Then one transaction per run to start. A run that fails is set aside on its
 * schedule; nothing is started once the deadline has passed. Returns how many entries from the
 * start of the page are handled (the window may move past them).
 */
async function runPage(t: TickState, window: { to: Date }, page: Record<string, unknown>[]): Promise<number> {
  const { deps, report } = t;
  const entries = page.map((raw) => {
    const sk = String(raw.gsi2sk ?? "");
    const parsed = scheduleItem.safeParse(raw);
    return {
      sk,
      schedule: parsed.success ? parsed.data : undefined,
      error: parsed.success ? undefined : parsed.error,
      at: occurrence(window.to, Number(sk.slice(0, 2)), Number(sk.slice(3, 5))),
    };
  });
  const outcomes: Outcome[] = entries.map((e) => {
    if (!e.schedule) {
      // Nothing to retry from: it runs again once it is readable. Logged, never held.
      deps.log.error("dispatcher: unreadable schedule item in the index", { key: e.sk, error: errorText(e.error) });
      return "failed";
    }
    // Written (created, re-timed or re-activated) after its minute of that day had passed: it
    // was not due then, so there is no missed run to catch up; it runs at its next minute.
    return Date.parse(e.schedule.updated_at) >= e.at.getTime() + MINUTE ? "skipped" : "later";
  });

  const open = entries.flatMap((e, i) => (outcomes[i] === "later" && e.schedule ? [{ i, schedule: e.schedule, at: e.at }] : []));
  const guards = await batchGetItems(
    deps,
    open.map((o) => keys.scheduleRun(o.schedule.id, utcDate(o.at))),
  );
  const toStart = open.filter((o) => {
    if (!guards.has(keyOf(keys.scheduleRun(o.schedule.id, utcDate(o.at))))) return true;
    outcomes[o.i] = "alreadyRan";
    return false;
  });
  const projects = await batchGetItems(
    deps,
    toStart.map((o) => keys.project(o.schedule.project_id)),
  );

  const runs: { i: number; schedule: ScheduleItem; at: Date; project?: Project; problem?: unknown; delay: number }[] = [];
  for (const o of toStart) {
    const raw = projects.get(keyOf(keys.project(o.schedule.project_id)));
    if (!raw) {
      outcomes[o.i] = "skipped";
      deps.log.warn("dispatcher: schedule of a missing project", { schedule_id: o.schedule.id, project_id: o.schedule.project_id });
      continue;
    }
    const project = projectItem.safeParse(raw);
    if (!project.success) runs.push({ ...o, problem: new Error(`the project record is unreadable: ${errorText(project.error)}`), delay: 0 });
    else runs.push({ ...o, project: project.data, delay: nextDelay(t, project.data.cluster_id) });
  }

  // Runs that cannot even be built are failures at once; the others start 25 to a transaction.
  const started: { jobId: string; delay: number }[] = [];
  const failures: { r: (typeof runs)[number]; error: unknown }[] = runs.filter((r) => r.problem).map((r) => ({ r, error: r.problem }));
  const ready = runs.filter((r) => !r.problem);
  const chunks: (typeof ready)[] = [];
  for (let k = 0; k < ready.length; k += RUNS_PER_TRANSACTION) chunks.push(ready.slice(k, k + RUNS_PER_TRANSACTION));
  await mapSettled(chunks, t.opts.concurrency, async (chunk) => {
    if (Date.now() >= t.deadline) return; // left "later": the next tick starts them
    const results = await startScheduledRuns(
      deps,
      chunk.map((r) => ({ schedule: r.schedule, project: r.project!, date: utcDate(r.at), availableAt: new Date(t.now.getTime() + r.delay * 1000) })),
      t.now,
    );
    results.forEach((res, k) => {
      const r = chunk[k]!;
      if (res.status === "rejected") failures.push({ r, error: res.reason });
      else if (!res.value) outcomes[r.i] = "alreadyRan";
      else {
        outcomes[r.i] = "created";
        started.push({ jobId: res.value, delay: r.delay });
        report.jobIds.push(res.value);
      }
    });
  });
  // A run that failed is set aside on its schedule; if even that record cannot be written, the
  // run stays unhandled and the window waits for it.
  const asides = await mapSettled(failures, t.opts.concurrency, async ({ r, error }) => {
    deps.log.error("dispatcher: could not start a scheduled backup; setting the schedule aside to retry it on its own", {
      schedule_id: r.schedule.id,
      error: errorText(error),
    });
    outcomes[r.i] = (await setAside(deps, r.schedule, r.at, 1, error, t.now)) ? "setAside" : "skipped";
  });
  asides.forEach((res, k) => {
    if (res.status === "fulfilled") return;
    report.failed++;
    deps.log.error("dispatcher: could not set a failing schedule aside; the window waits for it", {
      schedule_id: failures[k]!.r.schedule.id,
      error: errorText(res.reason),
    });
  });
  await sendStarted(t, started);

  for (const o of outcomes) {
    if (o === "created") report.created++;
    else if (o === "alreadyRan") report.alreadyRan++;
    else if (o === "skipped") report.skipped++;
    else if (o === "setAside") {
      report.setAside++;
      report.failed++;
    } else if (o === "failed") report.failed++;
  }
  const firstOpen = outcomes.indexOf("later");
  return firstOpen === -1 ? entries.length : firstOpen;
}

/**
 * Retries set-aside schedules whose backoff is over, each alone: its own project read and
 * transaction, never part of the window. A retry that fails again backs off further; a run more
 * than a day late is given up (the schedule's next occurrence is the window's again).
 */
async function retrySetAside(t: TickState): Promise<void> {
  const { deps, report, now } = t;
  const items = await queryAll(
    deps,
    rawItem,
    {
      IndexName: "gsi1",
      KeyConditionExpression: "gsi1pk = :p AND gsi1sk <= :now",
      ExpressionAttributeValues: { ":p": keys.scheduleRetryIndex, ":now": `${iso(now)}#~` },
      Limit: t.opts.retryLimit,
    },
    t.opts.retryLimit,
  );
  const started: { jobId: string; delay: number }[] = [];
  const results = await mapSettled(items, t.opts.concurrency, async (raw) => {
    if (Date.now() >= t.deadline) return;
    const parsed = setAsideSchedule.safeParse(raw);
    if (!parsed.success) {
      deps.log.error("dispatcher: unreadable set-aside schedule", { pk: String(raw.pk), error: errorText(parsed.error) });
      return;
    }
    const schedule = parsed.data;
    const retry = schedule.dispatch_retry;
    if (!retry) {
      await updateItemIf(deps, z.unknown(), {
        Key: keys.schedule(schedule.project_id),
        UpdateExpression: "REMOVE gsi1pk, gsi1sk",
        ConditionExpression: "attribute_not_exists(dispatch_retry)",
      });
      return;
    }
    const at = new Date(retry.at);
    if (now.getTime() - at.getTime() >= DAY) {
      deps.log.error("dispatcher: giving up a scheduled run more than a day late; the schedule runs at its next minute", {
        schedule_id: schedule.id,
        due: retry.at,
        attempts: retry.attempts,
        error: retry.error,
      });
      await clearRetry(deps, schedule, retry.at);
      return;
    }
    try {
      const project = await getProject(deps, schedule.project_id);
      if (!project) {
        await clearRetry(deps, schedule, retry.at);
        return;
      }
      const delay = nextDelay(t, project.cluster_id);
      const jobId = await startScheduledRun(deps, schedule, project, utcDate(at), now, new Date(now.getTime() + delay * 1000));
      if (!jobId) {
        report.alreadyRan++;
        await clearRetry(deps, schedule, retry.at);
        return;
      }
      report.created++;
      report.retried++;
      report.jobIds.push(jobId);
      started.push({ jobId, delay });
      deps.log.info("dispatcher: a set-aside schedule started its backup", { schedule_id: schedule.id, due: retry.at, attempts: retry.attempts + 1 });
    } catch (err) {
      report.failed++;
      deps.log.error("dispatcher: a set-aside schedule failed again", {
        schedule_id: schedule.id,
        due: retry.at,
        attempts: retry.attempts + 1,
        error: errorText(err),
      });
      await setAside(deps, schedule, at, retry.attempts + 1, err, now);
    }
  });
  for (const r of results) if (r.status === "rejected") deps.log.error("dispatcher: could not retry a set-aside schedule", { error: errorText(r.reason) });
  await sendStarted(t, started);
}

/**
 * Starts the backups of every schedule due since the watermark, in the order they were due, for
 * as long as `deadline` (a `Date.now()` instant) allows; what is left waits for the next tick.
 *
 * - Set-aside schedules whose backoff is over are retried first, each on its own.
 * - The window is read from the index page by page (only due schedules are read); after each page
 *   the watermark moves past what was handled (`until` and, inside a minute, `after`), so a tick
 *   that runs out of time loses nothing and the next one carries on.
 * - A schedule whose (schedule, date) guard exists costs a read from a BatchGet, no transaction.
 * - Each run to start is one transaction; starts on the same cluster are staggered
 *   (`staggerSeconds` apart, earliest missed first). Messages are sent after the transactions
 *   committed, in batches per delay; a failed send is left to the reaper.
 * - A run that fails is set aside on its schedule (retried alone with backoff): one schedule that
 *   always fails never holds the window. Only a failure to record that holds it.
 */
export async function dispatchDueSchedules(deps: Deps, opts: SchedulerOptions = defaultSchedulerOptions, deadline = Infinity): Promise<ScheduleTickReport> {
  const now = deps.now();
  const report: ScheduleTickReport = {
    window: null,
    read: 0,
    created: 0,
    alreadyRan: 0,
    skipped: 0,
    deferred: 0,
    failed: 0,
    setAside: 0,
    retried: 0,
    progress: null,
    unfinished: false,
    jobIds: [],
  };
  const t: TickState = { deps, opts, now, deadline, report, clusterStarts: new Map() };
  await retrySetAside(t);

  const mark = await readWatermark(deps);
  const window = dispatchWindow(mark?.until, now);
  if (!window) return report;
  report.window = { from: iso(window.from), to: iso(window.to) };

  const ranges = indexRanges(window);
  // Resume inside the first minute only when the window starts where the saved position does.
  let pos: Position = { until: window.from };
  if (mark?.after && mark.until.getTime() === window.from.getTime() && mark.after.startsWith(`${ranges[0]![0]}`))
    pos = { until: window.from, after: mark.after };
  const save = async () => {
    await advanceWatermark(deps, pos);
    report.progress = { until: iso(pos.until), after: pos.after ?? null };
  };

  scan: for (const [r, [lo, hi]] of ranges.entries()) {
    const resume = r === 0 ? pos.after : undefined;
    let cursor: string | undefined;
    do {
      if (Date.now() >= deadline) {
        report.unfinished = true;
        break scan;
      }
      const page = await queryPage(
        deps,
        rawItem,
        {
          IndexName: "gsi2",
          KeyConditionExpression: "gsi2pk = :p AND gsi2sk BETWEEN :lo AND :hi",
          ExpressionAttributeValues: { ":p": keys.scheduleIndex, ":lo": resume ?? lo, ":hi": hi },
          Limit: opts.pageSize,
        },
        cursor,
      );
      const items = page.items.filter((i) => i.gsi2sk !== resume);
      report.read += items.length;
      const handled = await runPage(t, window, items);
      if (handled > 0) {
        const last = items[handled - 1]!;
        const sk = String(last.gsi2sk);
        pos = { until: new Date(occurrence(window.to, Number(sk.slice(0, 2)), Number(sk.slice(3, 5))).getTime() - MINUTE), after: sk };
      }
      if (handled < items.length) {
        report.unfinished = true;
        break scan;
      }
      cursor = page.cursor;
      if (cursor) await save();
    } while (cursor);
    pos = { until: rangeEnd(window, hi) };
  }
  await save();
  return report;
}
