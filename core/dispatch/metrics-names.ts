/** The CloudWatch namespace and names of the service's own metrics (core/dispatch/metrics.ts publishes them, infra/alarms.ts alarms on them). */
export const METRICS_NAMESPACE = "CapyDB";
export const metricNames = {
  /** Projects with an active schedule and no verified backup in 26 hours. */
  staleProjects: "StaleProjects",
  /** Phases of a tick that threw or ran past their share. */
  phaseFailures: "DispatchPhaseFailures",
} as const;
