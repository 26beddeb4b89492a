import type { S3Client } from "@aws-sdk/client-s3";
import { DEFAULT_CLUSTER_JOB_CAP } from "../config.ts";
import type { ClusterConnection } from "../pg/pgconn.ts";
import type { TaskLauncher } from "../tasks/launcher.ts";

/** Test seams: called at the named moments of a run. Production passes none. */
export interface WorkerHooks {
  /** The lock is held and pg_dump is about to start / has finished (successfully or not). */
  onDumpStart?(jobId: string): void;
  onDumpEnd?(jobId: string): void;
  /** The artifact is in S3 and about to be restored (tests corrupt it here). */
  beforeVerify?(ctx: { s3: S3Client; bucket: string; key: string }): Promise<void>;
  /** A restore into a preview database is about to start pg_restore. */
  onRestoreStart?(jobId: string): void;
  /** The job, its backup and their events have committed (a crash test kills the process here). */
  afterComplete?(jobId: string): Promise<void> | void;
  /** A promote reached a phase boundary (crash tests kill the process here): see core/worker/promote.ts. */
  onPromotePhase?(jobId: string, phase: "safety_backup_requested" | "restore" | "rename" | "swapped"): Promise<void> | void;
}

/**
 * The worker's timing and sizing. Every number is injectable because tests need seconds where
 * production needs minutes (a lapsed lease, a retry backoff, a busy lock's delay).
 */
export interface WorkerOptions {
  /**
   * How long a claim (job lease) and the database lock stay valid without a heartbeat. A worker
   * that dies is replaced once this lapses, so it bounds the recovery time after a crash.
   */
  leaseMs: number;
  /** How often the heartbeat renews the lock, the job lease and the message's visibility. */
  heartbeatMs: number;
  /**
   * The message stays hidden this much longer than the lease, so that when a worker dies the
   * message reappears only after its lease has lapsed (and the next receive can claim the job).
   */
  visibilityMarginSeconds: number;
  /** Transient failure n (1-based) retries after base * 2^(n-1) seconds (±20 %), at most `retryMaxSeconds`. */
  retryBaseSeconds: number;
  retryMaxSeconds: number;
  /** A promote waiting for its safety backup looks again after this long (±20 %, at most 10 s). */
  lockBusyDelaySeconds: number;
  /**
   * Jobs that run at once on one cluster (dumps, restores, promotes): the rest wait their turn,
   * woken as slots free up. 0: no cap. Configured by CAPYDB_CLUSTER_JOB_CAP (default 4).
   */
  clusterJobCap: number;
  /**
   * A waiting job is due again after this long even if no release woke it (its holder crashed, a
   * wake message was lost): the dispatcher's reaper then sends it again. Only a safety net.
   */
  waitRecheckMs: number;
  /** Multipart part size (5..10 MiB): memory use is about partSize * (queueSize + 1). */
  partSizeBytes: number;
  uploadQueueSize: number;
  /**
   * Restores into previews: above 1, an artifact is downloaded to local disk and restored with
   * `pg_restore --jobs` (falls back to streaming when the disk lacks room).
   */
  restoreJobs: number;
  /** pg_dump's zlib level (0-9); default 4 (core/pg/dump.ts). */
  dumpCompressLevel?: number;
  /** pg_dump's --lock-wait-timeout: a table locked exclusively fails the attempt (transient) instead of hanging. */
  lockWaitTimeoutMs: number;
  /**
   * Point-in-time restores: how long to wait for the WAL archive to hold the commit the restore
   * makes on the cluster (PostgreSQL stops a recovery at the first commit after the time; the
   * receiver ships within seconds). Past it, the restore goes on with what the archive holds.
   */
  pitrArchiveWaitSeconds: number;
  /** Restore into a throwaway database here instead of on the project's own cluster. */
  verificationServer?: ClusterConnection;
  /**
   * Jobs that move more than `thresholdBytes` run as a task instead of in this worker (Lambda's
   * 15 minutes). Absent inside a task: a task never launches another.
   */
  offload?: OffloadOptions;
  /** The verification server's cluster id, recorded on the backup so that any later cleanup finds its scratch databases there. */
  verificationClusterId?: string;
  hooks?: WorkerHooks;
}

export interface OffloadOptions {
  launcher: TaskLauncher;
  /** Above this many bytes to move (pg_database_size, artifact size), the job goes to a task. */
  thresholdBytes: number;
  /**
   * The lease the worker gives the launch claim and the task's claim until the task's own
   * heartbeat takes over: long enough for Fargate to place the task and pull its image.
   */
  leaseMs: number;
}

export const defaultWorkerOptions: WorkerOptions = {
  leaseMs: 120_000,
  heartbeatMs: 30_000,
  visibilityMarginSeconds: 5,
  retryBaseSeconds: 30,
  retryMaxSeconds: 900,
  lockBusyDelaySeconds: 30,
  clusterJobCap: DEFAULT_CLUSTER_JOB_CAP,
  waitRecheckMs: 5 * 60_000,
  partSizeBytes: 8 * 1024 * 1024,
  uploadQueueSize: 2,
  restoreJobs: 1,
  lockWaitTimeoutMs: 120_000,
  pitrArchiveWaitSeconds: 120,
};

export function workerOptions(overrides: Partial<WorkerOptions> = {}): WorkerOptions {
  const o = { ...defaultWorkerOptions, ...overrides };
  if (o.heartbeatMs >= o.leaseMs) throw new Error("worker options: heartbeatMs must be shorter than leaseMs");
  if (o.dumpCompressLevel !== undefined && !(Number.isInteger(o.dumpCompressLevel) && o.dumpCompressLevel >= 0 && o.dumpCompressLevel <= 9)) {
    throw new Error("worker options: dumpCompressLevel must be an integer 0..9");
  }
  if (!(Number.isInteger(o.clusterJobCap) && o.clusterJobCap >= 0)) throw new Error("worker options: clusterJobCap must be a whole number (0: no cap)");
  if (o.partSizeBytes < 5 * 1024 * 1024 || o.partSizeBytes > 10 * 1024 * 1024) throw new Error("worker options: partSizeBytes must be 5..10 MiB");
  return o;
}

/** ±20 % so that jobs delayed together do not come back together. */
export function jitter(seconds: number, random: () => number = Math.random): number {
  return Math.max(1, Math.round(seconds * (0.8 + 0.4 * random())));
}

/** Delay before retry number `attempt` (the attempt that just failed, 1-based). */
export function backoffSeconds(o: Pick<WorkerOptions, "retryBaseSeconds" | "retryMaxSeconds">, attempt: number, random?: () => number): number {
  return Math.min(o.retryMaxSeconds, jitter(o.retryBaseSeconds * 2 ** Math.max(0, attempt - 1), random));
}
