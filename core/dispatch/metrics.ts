import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { Deps } from "../deps.ts";
import { errorText } from "../concurrency.ts";
import type { TickReport } from "./handler.ts";
import { findStaleProjects } from "./staleness.ts";

import { METRICS_NAMESPACE, metricNames } from "./metrics-names.ts";

/**
 * After each tick, the dispatcher publishes its figures as CloudWatch metrics through Powertools
 * Metrics (embedded metric format: one log line, no PutMetricData call, so the VPC needs no
 * monitoring endpoint). A staleness count that cannot be computed is left out (the alarm treats
 * missing data as breaching), never published as 0.
 */
export async function publishTickMetrics(deps: Deps, report: TickReport, metrics: Metrics): Promise<void> {
  metrics.addMetric(metricNames.phaseFailures, MetricUnit.Count, report.errors.length);
  try {
    const staleness = await findStaleProjects(deps);
    metrics.addMetric(metricNames.staleProjects, MetricUnit.Count, staleness.stale.length);
    if (staleness.stale.length)
      deps.log.warn("projects without a verified backup in 26 hours", { projects: staleness.stale.slice(0, 20), count: staleness.stale.length });
  } catch (err) {
    deps.log.error("dispatcher: staleness could not be computed", { error: errorText(err) });
  }
  metrics.publishStoredMetrics();
}

export function dispatchMetrics(): Metrics {
  return new Metrics({ namespace: METRICS_NAMESPACE, serviceName: "dispatch" });
}
