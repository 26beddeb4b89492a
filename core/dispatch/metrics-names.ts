/** The CloudWatch namespace and names of the service's own metrics (core/dispatch/metrics.ts publishes them, infra/alarms.ts alarms on them). */
export const METRICS_NAMESPACE = "CapyDB";
export const metricNames = {
  /** Projects with an active schedule and no verified backup in 26 hours. */
  staleProjects: "StaleProjects",
  /** Phases of a tick that threw or ran past their share. */
  phaseFailures: "DispatchPhaseFailures",
  /** WAL archive (core/wal/health.ts), per cluster (dimension `cluster`) and the worst of them (`service` only). */
  walArchiveLagSeconds: "WalArchiveLagSeconds",
  walArchiveOpenGaps: "WalArchiveOpenGaps",
  /** 1 while the cluster's newest finished base backup failed; the service-wide figure counts such clusters. */
  baseBackupFailing: "BaseBackupFailing",
  /** WAL the replication slot keeps on the cluster (bytes), where pg_replication_slots told the receiver. */
  walSlotRetainedBytes: "WalSlotRetainedBytes",
  /** Archived clusters whose last point-in-time drill failed (core/wal/drills.ts). */
  pitrDrillsFailing: "PitrDrillsFailing",
} as const;
