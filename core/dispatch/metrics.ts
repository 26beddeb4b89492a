import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { Deps } from "../deps.ts";
import { errorText } from "../concurrency.ts";
import type { TickReport } from "./handler.ts";
import { findStaleProjects } from "./staleness.ts";
import { allArchiveHealth } from "../wal/health.ts";

import { METRICS_NAMESPACE, metricNames } from "./metrics-names.ts";

/**
 * After each tick, the dispatcher publishes its figures as CloudWatch metrics through Powertools
 * Metrics (embedded metric format: one log line, no PutMetricData call, so the VPC needs no
 * monitoring endpoint). A staleness count that cannot be computed is left out (the alarm treats
 * missing data as breaching), never published as 0.
 */
export async function publishTickMetrics(deps: Deps, report: TickReport, metrics: Metrics): Promise<void> {
  metrics.addMetric(metricNames.phaseFailures, MetricUnit.Count, report.errors.length);
  // Left out when the drills phase failed (its failure is the phase-failure metric's).
  if (report.drills) metrics.addMetric(metricNames.pitrDrillsFailing, MetricUnit.Count, report.drills.failing);
  try {
    const staleness = await findStaleProjects(deps);
    metrics.addMetric(metricNames.staleProjects, MetricUnit.Count, staleness.stale.length);
    if (staleness.stale.length)
      deps.log.warn("projects without a verified backup in 26 hours", { projects: staleness.stale.slice(0, 20), count: staleness.stale.length });
  } catch (err) {
    deps.log.error("dispatcher: staleness could not be computed", { error: errorText(err) });
  }
  await publishArchiveMetrics(deps, metrics);
  metrics.publishStoredMetrics();
}

/**
 * The WAL archive's health from the index (core/wal/health.ts): one EMF line per archived cluster
 * (dimensions `service`, `cluster`: lag, open gaps, base backup failing, slot WAL retained when
 * known) and the worst figures service-wide on `metrics` (what infra/alarms.ts alarms on, whatever
 * clusters exist). Computed here rather than in the archiver, so an archiver that died shows as a
 * lag that grows. Left out when the index cannot be read (the lag alarm treats missing as breaching).
 */
export async function publishArchiveMetrics(deps: Deps, metrics: Metrics): Promise<void> {
  let health: Awaited<ReturnType<typeof allArchiveHealth>>;
  try {
    health = (await allArchiveHealth(deps)).filter((h) => h.enabled);
  } catch (err) {
    deps.log.error("dispatcher: WAL archive health could not be computed", { error: errorText(err) });
    return;
  }
  let maxLag = 0;
  let gaps = 0;
  let failing = 0;
  let maxRetained = 0;
  for (const h of health) {
    const one = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: "dispatch" });
    one.addDimension("cluster", h.cluster_id);
    one.addMetric(metricNames.walArchiveLagSeconds, MetricUnit.Seconds, h.lag_seconds);
    one.addMetric(metricNames.walArchiveOpenGaps, MetricUnit.Count, h.open_gaps.length);
    one.addMetric(metricNames.baseBackupFailing, MetricUnit.Count, h.base_backup_failing ? 1 : 0);
    if (h.slot.retained_bytes !== null) one.addMetric(metricNames.walSlotRetainedBytes, MetricUnit.Bytes, h.slot.retained_bytes);
    one.publishStoredMetrics();
    maxLag = Math.max(maxLag, h.lag_seconds);
    gaps += h.open_gaps.length;
    failing += h.base_backup_failing ? 1 : 0;
    maxRetained = Math.max(maxRetained, h.slot.retained_bytes ?? 0);
  }
  metrics.addMetric(metricNames.walArchiveLagSeconds, MetricUnit.Seconds, maxLag);
  metrics.addMetric(metricNames.walArchiveOpenGaps, MetricUnit.Count, gaps);
  metrics.addMetric(metricNames.baseBackupFailing, MetricUnit.Count, failing);
  metrics.addMetric(metricNames.walSlotRetainedBytes, MetricUnit.Bytes, maxRetained);
}

export function dispatchMetrics(): Metrics {
  return new Metrics({ namespace: METRICS_NAMESPACE, serviceName: "dispatch" });
}
