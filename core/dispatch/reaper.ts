import { getBackupForWork } from "../backups/backups.ts";
import { failDeadExport } from "../exports/exports.ts";
import { failBackupForGood } from "../backups/cleanup.ts";
import { keys } from "../db/keys.ts";
import { queryAll } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { jobItem, reapLapsedJob, requeuePendingJob, type JobItem } from "../jobs/jobs.ts";
import { clusterResource, releaseLapsedLock } from "../jobs/locks.ts";
import { wakeNext } from "../jobs/waiters.ts";
import { enqueueJobs } from "../jobs/queue.ts";
import { errorText, mapSettled } from "../concurrency.ts";
import { settlePreviewForJob } from "../previews/previews.ts";

export interface ReaperOptions {
  /** A pending job due longer ago than this and still unclaimed has lost its message. */
  pendingGraceMs: number;
  /** Jobs handled per index and tick (oldest first); the rest wait for the next tick. */
  limit: number;
  concurrency: number;
}

export const defaultReaperOptions: ReaperOptions = { pendingGraceMs: 2 * 60_000, limit: 500, concurrency: 8 };

export interface ReaperReport {
  /** Pending jobs whose message was lost (or deferred past SQS's delay), sent again. */
  requeued: number;
  /** Running jobs whose lease lapsed, put back to pending and sent again. */
  retried: number;
  /** Running jobs whose lease lapsed with no attempts left: failed. */
  failed: number;
  /** Locks of reaped jobs whose lease had lapsed, deleted. */
  locksReleased: number;
  errors: number;
  jobIds: string[];
}

type Db = Pick<Deps, "ddb" | "table" | "now">;

async function indexedJobs(deps: Db, state: "pending" | "running", before: Date, limit: number): Promise<JobItem[]> {
  return queryAll(
    deps,
    jobItem,
    {
      IndexName: "gsi2",
      KeyConditionExpression: "gsi2pk = :p AND gsi2sk < :before",
      ExpressionAttributeValues: { ":p": keys.jobStateIndex(state), ":before": `${iso(before)}#` },
      Limit: limit,
    },
    limit,
  );
}

/**
 * Dead workers and lost messages, found through the job-state index (never a scan), dead workers
 * first, and nothing started past `deadline` (a `Date.now()` instant; the rest waits on its index):
 * - a `pending` job due more than `pendingGraceMs` ago is sent again; its `available_at` moves to
 *   now so it is sent at most once per grace period while a busy queue drains;
 * - a `running` job whose lease lapsed goes back to `pending` (sent again) while it has attempts
 *   left, else `failed` ("the worker stopped responding"), and its pending/running backup fails;
 * - the lock such a job held is released once its own lease has lapsed.
 * Every transition is conditional on what was read, so a worker that claims or finishes the job
 * meanwhile wins.
 */
export async function reapJobs(deps: Deps, opts: ReaperOptions = defaultReaperOptions, deadline = Infinity): Promise<ReaperReport> {
  const now = deps.now();
  const report: ReaperReport = { requeued: 0, retried: 0, failed: 0, locksReleased: 0, errors: 0, jobIds: [] };
  const toSend: string[] = [];
  // Nothing is started past the deadline: what is left stays on its index for the next tick.
  const timeLeft = () => Date.now() < deadline;

  // Dead workers first: a backlog of pending jobs (a catch-up) must not delay their recovery.
  const lapsed = await indexedJobs(deps, "running", now, opts.limit);
  const reaped = await mapSettled(lapsed, opts.concurrency, async (job) => {
    if (!timeLeft()) return { outcome: undefined, lockReleased: false };
    const reaped = await reapLapsedJob(deps, job);
    const outcome = reaped?.outcome;
    if (outcome === "failed" && job.type === "project.backup" && job.backup_id) {
      await failBackup(deps, job, `the worker stopped responding (its lease expired at ${job.lease_expires_at})`);
    }
    if (outcome === "failed" && job.type === "project.export" && job.export_id) {
      await failDeadExport(deps, job, `the worker stopped responding (its lease expired at ${job.lease_expires_at})`);
    }
    if (outcome === "failed" && job.preview_database_id) {
      await settlePreviewForJob(deps, {
        ...job,
        state: "failed",
        error: `the worker stopped responding (its lease expired at ${job.lease_expires_at}); no attempts left`,
      });
    }
    let lockReleased = false;
    if (outcome && job.locked_resource) lockReleased = await releaseLapsedLock(deps, job.locked_resource, job.id);
    if (outcome) {
      // The dead job's turn (its lock, its cluster slot: their leases have lapsed) goes to the
      // jobs waiting for it, as a live job's release would have given it.
      if (job.locked_resource) await wakeNext(deps, job.locked_resource);
      await wakeNext(deps, clusterResource(job.cluster_id));
    }
    return { outcome, lockReleased };
  });
  reaped.forEach((r, i) => {
    const job = lapsed[i]!;
    if (r.status === "rejected") {
      report.errors++;
      deps.log.error("reaper: could not reap a lapsed job", { job_id: job.id, error: errorText(r.reason) });
      return;
    }
    if (r.value.lockReleased) report.locksReleased++;
    if (!r.value.outcome) return;
    report[r.value.outcome]++;
    report.jobIds.push(job.id);
    if (r.value.outcome === "retried" || (r.value.outcome === "failed" && cleansUpOnDelivery(job))) toSend.push(job.id);
    deps.log.warn(`reaper: ${r.value.outcome === "retried" ? "retrying" : "failed"} a job whose worker stopped responding`, {
      job_id: job.id,
      attempts: job.attempts,
    });
  });

  const waiting = timeLeft() ? await indexedJobs(deps, "pending", new Date(now.getTime() - opts.pendingGraceMs), opts.limit) : [];
  const requeued = await mapSettled(waiting, opts.concurrency, (job) => (timeLeft() ? requeuePendingJob(deps, job) : Promise.resolve(undefined)));
  requeued.forEach((r, i) => {
    const job = waiting[i]!;
    if (r.status === "rejected") {
      report.errors++;
      deps.log.error("reaper: could not requeue a pending job", { job_id: job.id, error: errorText(r.reason) });
    } else if (r.value) {
      report.requeued++;
      report.jobIds.push(job.id);
      toSend.push(job.id);
    }
  });

  if (toSend.length) {
    try {
      await enqueueJobs(deps, toSend);
    } catch (err) {
      // They stay pending with available_at = now: the next reaper pass after the grace sends them.
      report.errors++;
      deps.log.error("reaper: could not enqueue", { jobs: toSend.length, error: errorText(err) });
    }
  }
  return report;
}

/**
 * The backup of a job that died with no attempts left fails too, with the one cleanup every path
 * that fails a backup uses (artifact, every attempt's upload and scratch databases); what cannot be
 * removed now stays findable by the retention sweep.
 */
async function failBackup(deps: Deps, job: JobItem, why: string): Promise<void> {
  const backup = await getBackupForWork(deps, job.project_id, job.backup_id!);
  if (!backup) return;
  await failBackupForGood(deps, backup, { verificationError: `the backup did not complete: ${why}`, attempts: job.attempts });
}

/**
 * A promote (or overwrite restore) that died on its last attempt is sent once more: the delivery
 * finds it failed and its runner cleans up on the cluster (connections allowed again, the hidden
 * and parked databases' leftovers dropped).
 */
const cleansUpOnDelivery = (job: JobItem) => job.type === "project.promote_preview" || (job.type === "project.restore" && !job.preview_database_id);
