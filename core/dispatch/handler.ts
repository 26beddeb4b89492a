import { defaultRetentionOptions, sweepExpiredBackups, type RetentionOptions, type RetentionReport } from "../backups/retention.ts";
import type { Deps } from "../deps.ts";
import { iso } from "../deps.ts";
import { errorText } from "../concurrency.ts";
import { defaultExportSweepOptions, sweepExpiredExports, type ExportSweepOptions, type ExportSweepReport } from "../exports/retention.ts";
import { defaultReaperOptions, reapJobs, type ReaperOptions, type ReaperReport } from "./reaper.ts";
import { getProject } from "../orgs/orgs.ts";
import { expirePreviews, type ExpiryReport } from "../previews/previews.ts";
import { defaultSchedulerOptions, dispatchDueSchedules, type ScheduleTickReport, type SchedulerOptions } from "./scheduler.ts";
import { defaultSweepOptions, sweepDueDeliveries } from "../webhooks/deliveries.ts";
import { relayEvents, type RelayReport } from "../webhooks/relay.ts";
import { DEFAULT_BASE_BACKUP_AT, markDailyBaseBackupsDue } from "../wal/basebackups.ts";
import { DEFAULT_DRILL_AT, queueDailyDrills, type DrillTickReport } from "../wal/drills.ts";
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { publishTickMetrics } from "./metrics.ts";

type Phase = "schedules" | "retention" | "reaper" | "exports" | "previews" | "webhooks" | "baseBackups" | "drills";

export interface DispatchOptions {
  scheduler: SchedulerOptions;
  retention: RetentionOptions;
  reaper: ReaperOptions;
  exports: ExportSweepOptions;
  /** `HH:MM` UTC at which each archived cluster's daily base backup becomes due (CAPYDB_BASE_BACKUP_AT). */
  baseBackupAt: string;
  /** `HH:MM` UTC after which each archived cluster's daily pitr drill is queued (core/wal/drills.ts). */
  drillAt: string;
  /**
   * The tick's time budget, ms, well inside the function's timeout (50 s, infra/settings.ts): the
   * phases share it (`shares`), none can take another's share, and a phase stuck far past its
   * share is stopped (see withinShare).
   */
  budgetMs: number;
  /** Each phase's share of the budget, in the order the phases run. */
  shares: Record<Phase, number>;
}

/** The order of the phases: the reaper first, so lost jobs are recovered on every tick. */
const phaseOrder: Phase[] = ["reaper", "schedules", "retention", "exports", "previews", "baseBackups", "drills", "webhooks"];

export const defaultDispatchOptions: DispatchOptions = {
  scheduler: defaultSchedulerOptions,
  retention: defaultRetentionOptions,
  reaper: defaultReaperOptions,
  exports: defaultExportSweepOptions,
  baseBackupAt: DEFAULT_BASE_BACKUP_AT,
  drillAt: DEFAULT_DRILL_AT,
  budgetMs: 30_000,
  shares: { reaper: 0.15, schedules: 0.35, retention: 0.15, exports: 0.075, previews: 0.075, baseBackups: 0.025, drills: 0.025, webhooks: 0.15 },
};

export interface TickReport {
  at: string;
  schedules?: ScheduleTickReport;
  retention?: RetentionReport;
  reaper?: ReaperReport;
  /** Exports past their retention: dumps deleted, exports expired. */
  exports?: ExportSweepReport;
  previews?: ExpiryReport;
  /** Archived clusters whose daily base backup was made due (the archiver takes it). */
  baseBackups?: { due: number };
  /** Daily pitr drills queued, and archived clusters whose last drill failed (published as a metric). */
  drills?: DrillTickReport;
  /** Outbox events relayed to webhook deliveries, and lost deliveries sent again. */
  webhooks?: RelayReport & { resent: number };
  /** Phases that threw or ran past their share; the other phases still ran. */
  errors: { phase: Phase; error: string }[];
  /** Each phase's time, ms, and the time it was given. */
  phases: Partial<Record<Phase, { ms: number; givenMs: number }>>;
  ms: number;
}

/**
 * Runs `fn` with `ms` to do it. A phase that watches its deadline (`cooperative`: the reaper and the
 * schedules, whose work is unbounded after an outage) gets it as a `Date.now()` instant and starts
 * no more work past it; what is in flight is bounded by the AWS clients' timeouts. The others
 * (bounded by their own limits) get a hard stop at one and a half times their share plus a second:
 * past it the phase counts as failed and the tick moves on (its work is conditional and
 * idempotent, so the next tick resumes it harmlessly).
 */
async function withinShare<T>(ms: number, cooperative: boolean, fn: (deadline: number) => Promise<T>): Promise<T> {
  if (cooperative) return fn(Date.now() + ms);
  const hardMs = ms * 1.5 + 1_000;
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`ran far past its share of the tick (${Math.round(ms)} ms, stopped at ${Math.round(hardMs)} ms); the next tick carries on`)),
      hardMs,
    );
  });
  try {
    return await Promise.race([fn(Date.now() + ms), overrun]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One minute tick: reap lost and dead jobs, start the due scheduled backups, expire backups past
 * retention, delete exports past theirs, expire previews, relay webhook events (last, so the events
 * the other phases wrote go out in the same tick). Each phase gets its share of the tick's budget
 * (`shares` of `budgetMs`, or more when the phases before it left time unused), so none can starve
 * the others: the reaper runs first, on every
 * tick, and a catch-up of tens of thousands of schedules proceeds tick by tick. The phases are
 * independent: one failing does not stop the others. Every step is idempotent and conditional,
 * so a double tick or two dispatchers at once are harmless.
 */
export async function runTick(deps: Deps, opts: Partial<DispatchOptions> = {}): Promise<TickReport> {
  const o = { ...defaultDispatchOptions, ...opts };
  const started = Date.now();
  const report: TickReport = { at: iso(deps.now()), errors: [], phases: {}, ms: 0 };
  const ends = started + o.budgetMs;
  const phase = async <K extends Phase>(name: K, fn: (deadline: number) => Promise<NonNullable<TickReport[K]>>) => {
    // Its own share of the budget at least, or its proportion of what the phases before it left.
    const left = phaseOrder.slice(phaseOrder.indexOf(name)).reduce((n, p) => n + o.shares[p], 0);
    const givenMs = Math.max(o.budgetMs * o.shares[name], Math.max(0, ends - Date.now()) * (left > 0 ? o.shares[name] / left : 0));
    const t0 = Date.now();
    try {
      report[name] = await withinShare(givenMs, name === "reaper" || name === "schedules", fn);
    } catch (err) {
      report.errors.push({ phase: name, error: errorText(err) });
      deps.log.error(`dispatcher: ${name} failed`, { error: errorText(err) });
    }
    report.phases[name] = { ms: Date.now() - t0, givenMs: Math.round(givenMs) };
  };
  const run: { [K in Phase]: (deadline: number) => Promise<NonNullable<TickReport[K]>> } = {
    reaper: (deadline) => reapJobs(deps, o.reaper, deadline),
    schedules: (deadline) => dispatchDueSchedules(deps, o.scheduler, deadline),
    webhooks: async () => {
      const relayed = await relayEvents(deps);
      const swept = await sweepDueDeliveries(deps, defaultSweepOptions);
      return { ...relayed, errors: relayed.errors + swept.errors, resent: swept.sent };
    },
    retention: () => sweepExpiredBackups(deps, `dispatcher:${deps.workerId}`, o.retention),
    exports: () => sweepExpiredExports(deps, o.exports),
    previews: () => expirePreviews(deps, (id) => getProject(deps, id)),
    baseBackups: async () => ({ due: await markDailyBaseBackupsDue(deps, o.baseBackupAt) }),
    drills: () => queueDailyDrills(deps, o.drillAt),
  };
  for (const name of phaseOrder) await phase(name, run[name] as (deadline: number) => Promise<never>);
  report.ms = Date.now() - started;
  return report;
}

/**
 * The dispatcher entry shared by the Lambda function (EventBridge minute tick) and the local
 * stack's ticker. It throws after all phases ran if any failed, so the invocation shows as failed
 * (and a retry is harmless).
 */
export function createDispatchHandler(deps: Deps, opts: Partial<DispatchOptions> = {}, metrics?: Metrics) {
  return async (): Promise<TickReport> => {
    const report = await runTick(deps, opts);
    // Deployed: phase failures and backup staleness as CloudWatch metrics (core/dispatch/metrics.ts).
    if (metrics) await publishTickMetrics(deps, report, metrics);
    // A tick that found nothing to do logs at DEBUG: one INFO line a minute saying "nothing" would
    // bury the lines that matter (and costs CloudWatch ingestion); Lambda's own REPORT line still
    // shows every invocation.
    const acted = [
      report.schedules?.created,
      report.schedules?.setAside,
      report.retention?.deleted,
      report.exports?.deleted,
      report.reaper?.requeued,
      report.reaper?.retried,
      report.reaper?.failed,
    ].some((n) => (n ?? 0) > 0);
    deps.log[acted || report.errors.length || report.schedules?.unfinished ? "info" : "debug"]("dispatcher tick", {
      window: report.schedules?.window,
      started: report.schedules?.created,
      ...(report.schedules?.unfinished ? { schedules_unfinished: true, schedules_progress: report.schedules.progress } : {}),
      ...(report.schedules?.setAside ? { schedules_set_aside: report.schedules.setAside } : {}),
      expired: report.retention?.deleted,
      exports_expired: report.exports?.deleted,
      requeued: report.reaper?.requeued,
      retried: report.reaper?.retried,
      failed: report.reaper?.failed,
      webhook_events: report.webhooks?.events,
      ms: report.ms,
    });
    if (report.errors.length) throw new Error(`dispatcher tick failed: ${report.errors.map((e) => `${e.phase}: ${e.error}`).join("; ")}`);
    return report;
  };
}
