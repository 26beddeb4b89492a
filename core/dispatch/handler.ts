import { defaultRetentionOptions, sweepExpiredBackups, type RetentionOptions, type RetentionReport } from "../backups/retention.ts";
import type { Deps } from "../deps.ts";
import { iso } from "../deps.ts";
import { errorText } from "../concurrency.ts";
import { defaultExportSweepOptions, sweepExpiredExports, type ExportSweepOptions, type ExportSweepReport } from "../exports/retention.ts";
import { defaultReaperOptions, reapJobs, type ReaperOptions, type ReaperReport } from "./reaper.ts";
import { getProject } from "../orgs/orgs.ts";
import { expirePreviews, type ExpiryReport } from "../previews/previews.ts";
import { dispatchDueSchedules, type ScheduleTickReport, type SchedulerOptions } from "./scheduler.ts";
import { defaultSweepOptions, sweepDueDeliveries } from "../webhooks/deliveries.ts";
import { relayEvents, type RelayReport } from "../webhooks/relay.ts";

export interface DispatchOptions {
  scheduler: SchedulerOptions;
  retention: RetentionOptions;
  reaper: ReaperOptions;
  exports: ExportSweepOptions;
}

export const defaultDispatchOptions: DispatchOptions = {
  scheduler: { staggerSeconds: 30, concurrency: 16 },
  retention: defaultRetentionOptions,
  reaper: defaultReaperOptions,
  exports: defaultExportSweepOptions,
};

type Phase = "schedules" | "retention" | "reaper" | "exports" | "previews" | "webhooks";

export interface TickReport {
  at: string;
  schedules?: ScheduleTickReport;
  retention?: RetentionReport;
  reaper?: ReaperReport;
  /** Exports past their retention: dumps deleted, exports expired. */
  exports?: ExportSweepReport;
  previews?: ExpiryReport;
  /** Outbox events relayed to webhook deliveries, and lost deliveries sent again. */
  webhooks?: RelayReport & { resent: number };
  /** Phases that threw; the other phases still ran. */
  errors: { phase: Phase; error: string }[];
  ms: number;
}

/**
 * One minute tick: start the due scheduled backups, expire backups past retention, reap lost and
 * dead jobs, delete exports past theirs. The phases are independent: one failing does not stop the others. Every step is
 * idempotent and conditional, so a double tick or two dispatchers at once are harmless.
 */
export async function runTick(deps: Deps, opts: Partial<DispatchOptions> = {}): Promise<TickReport> {
  const o = { ...defaultDispatchOptions, ...opts };
  const started = Date.now();
  const report: TickReport = { at: iso(deps.now()), errors: [], ms: 0 };
  const phase = async <K extends Phase>(name: K, fn: () => Promise<NonNullable<TickReport[K]>>) => {
    try {
      report[name] = await fn();
    } catch (err) {
      report.errors.push({ phase: name, error: errorText(err) });
      deps.log.error(`dispatcher: ${name} failed`, { error: errorText(err) });
    }
  };
  await phase("schedules", () => dispatchDueSchedules(deps, o.scheduler));
  await phase("retention", () => sweepExpiredBackups(deps, `dispatcher:${deps.workerId}`, o.retention));
  await phase("reaper", () => reapJobs(deps, o.reaper));
  await phase("exports", () => sweepExpiredExports(deps, o.exports));
  await phase("previews", () => expirePreviews(deps, (id) => getProject(deps, id)));
  await phase("webhooks", async () => {
    const relayed = await relayEvents(deps);
    const swept = await sweepDueDeliveries(deps, defaultSweepOptions);
    return { ...relayed, errors: relayed.errors + swept.errors, resent: swept.sent };
  });
  report.ms = Date.now() - started;
  return report;
}

/**
 * The dispatcher entry shared by the Lambda function (EventBridge minute tick) and the local
 * stack's ticker. It throws after all phases ran if any failed, so the invocation shows as failed
 * (and a retry is harmless).
 */
export function createDispatchHandler(deps: Deps, opts: Partial<DispatchOptions> = {}) {
  return async (): Promise<TickReport> => {
    const report = await runTick(deps, opts);
    // A tick that found nothing to do logs at DEBUG: one INFO line a minute saying "nothing" would
    // bury the lines that matter (and costs CloudWatch ingestion); Lambda's own REPORT line still
    // shows every invocation.
    const acted = [report.schedules?.created, report.retention?.deleted, report.exports?.deleted, report.reaper?.requeued, report.reaper?.retried, report.reaper?.failed].some((n) => (n ?? 0) > 0);
    deps.log[acted || report.errors.length ? "info" : "debug"]("dispatcher tick", {
      window: report.schedules?.window,
      started: report.schedules?.created,
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
