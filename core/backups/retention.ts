import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { z } from "../zod.ts";
import { keys } from "../db/keys.ts";
import { queryAll, transactWriteIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { newId } from "../ids.ts";
import { completeJob, createClaimedJob, deferOwnJob, getJobItem, reclaimOwnJob, type JobItem } from "../jobs/jobs.ts";
import { errorText, mapSettled } from "../concurrency.ts";
import { cleanupFailedBackup } from "./cleanup.ts";
import { backupItem, getBackupForWork, type BackupItem } from "./backups.ts";

/**
 * Index attributes that put a backup in the retention sweep's expiry index (gsi2 `BKPEXP` /
 * `<expires_at>#<bkp>`): every backup that may have left an artifact behind, i.e. `completed`
 * and `failed` ones (a dump that did not restore still sits in S3). Pending and running backups
 * are not in it (the worker owns them), nor expired ones (nothing left to delete). Undefined
 * values mean "remove", so the result can be spread into `setFields(...)`.
 *
 * @example the worker, when it writes a backup's final state:
 *   setFields({ state: "completed", ..., ...backupExpiryIndex({ ...backup, state: "completed" }) })
 */
export function backupExpiryIndex(backup: Pick<BackupItem, "id" | "state" | "expires_at">): { gsi2pk: string | undefined; gsi2sk: string | undefined } {
  return backup.state === "completed" || backup.state === "failed"
    ? { gsi2pk: keys.backupExpiryIndex, gsi2sk: `${backup.expires_at}#${backup.id}` }
    : { gsi2pk: undefined, gsi2sk: undefined };
}

export interface RetentionOptions {
  /** Expired backups handled per tick (oldest expiry first); the rest wait for the next tick. */
  limit: number;
  concurrency: number;
  /** Claimed by the sweep while it deletes (the delete job's lease). */
  leaseMs: number;
  /** A backup kept by the safety rule is looked at again after this long, not every tick. */
  holdRecheckMs: number;
  /** Retry delay after the n-th failed delete: min(max, base * 2^(n-1)); the first is the next tick. */
  retryBaseMs: number;
  retryMaxMs: number;
}

export const defaultRetentionOptions: RetentionOptions = {
  limit: 200,
  concurrency: 8,
  leaseMs: 5 * 60_000,
  holdRecheckMs: 60 * 60_000,
  retryBaseMs: 60_000,
  retryMaxMs: 60 * 60_000,
};

export interface RetentionReport {
  /** Expired backups read from the index. */
  read: number;
  deleted: number;
  /** Kept by the safety rule: the project's newest verified backup. */
  held: number;
  /** Another sweep holds it right now. */
  busy: number;
  /** Delete failed; retried on a later tick. */
  failed: number;
  /** project.backup_delete jobs created (completed or failed). */
  jobIds: string[];
}

const sweptBackup = backupItem.extend({ delete_failures: z.number().int().optional(), delete_job_id: z.string().optional() });
type SweptBackup = z.infer<typeof sweptBackup>;

type Db = Pick<Deps, "ddb" | "table">;

/** The project's newest backup that is completed and verified: the one the safety rule keeps. */
async function newestVerifiedBackupId(deps: Db, projectId: string): Promise<string | undefined> {
  const [b] = await queryAll(
    deps,
    backupItem,
    {
      KeyConditionExpression: "pk = :p AND begins_with(sk, :b)",
      FilterExpression: "#state = :completed AND verification_state = :verified",
      ExpressionAttributeNames: { "#state": "state" },
      ExpressionAttributeValues: { ":p": keys.project(projectId).pk, ":b": keys.backupPrefix, ":completed": "completed", ":verified": "verified" },
      ScanIndexForward: false,
    },
    1,
  );
  return b?.id;
}

const isMissingObject = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
};

/**
 * Deletes the artifacts of backups past their expiry and marks them `expired` (the record stays
 * listed). Each deletion is a `project.backup_delete` job in the project's job list, run here in
 * the tick: created `running` (claimed by `claimedBy`, max_attempts 1), then `completed`, or
 * `failed` with the error while the backup stays in the expiry index for a later tick (with
 * backoff). A stuck dispatcher's delete job is failed by the reaper when its lease lapses (no
 * attempts left) and the sweep retries with a new job. A missing object counts as deleted.
 *
 * Safety rule: the project's newest completed+verified backup is never deleted while no newer
 * verified backup exists; it is re-checked every `holdRecheckMs`. Nothing is deleted before
 * `expires_at`.
 */
export async function sweepExpiredBackups(deps: Deps, claimedBy: string, opts: RetentionOptions = defaultRetentionOptions): Promise<RetentionReport> {
  const now = deps.now();
  const report: RetentionReport = { read: 0, deleted: 0, held: 0, busy: 0, failed: 0, jobIds: [] };
  const candidates = await queryAll(
    deps,
    sweptBackup,
    {
      IndexName: "gsi2",
      KeyConditionExpression: "gsi2pk = :p AND gsi2sk < :now",
      ExpressionAttributeValues: { ":p": keys.backupExpiryIndex, ":now": `${iso(now)}#` },
      Limit: opts.limit,
    },
    opts.limit,
  );
  report.read = candidates.length;

  const protectedIds = new Map<string, Promise<string | undefined>>();
  const keep = (projectId: string) => {
    let p = protectedIds.get(projectId);
    if (!p) protectedIds.set(projectId, (p = newestVerifiedBackupId(deps, projectId)));
    return p;
  };

  const results = await mapSettled(candidates, opts.concurrency, async (b) => {
    // Defensive: the index key is never earlier than expires_at, except for a failed backup whose
    // leftovers are being cleaned up (due as soon as its failing path gave up on them).
    if (b.state !== "failed" && Date.parse(b.expires_at) >= now.getTime()) return "held" as const;
    if ((await keep(b.project_id)) === b.id) {
      // False when someone else just changed the backup: the next sweep looks again.
      await deferInIndex(deps, b, new Date(now.getTime() + opts.holdRecheckMs));
      return "held" as const;
    }
    return deleteArtifact(deps, b, claimedBy, now, opts, report.jobIds);
  });
  results.forEach((r, i) => {
    if (r.status === "fulfilled") report[r.value]++;
    else {
      report.failed++;
      deps.log.error("retention: could not process an expired backup", { backup_id: candidates[i]!.id, error: errorText(r.reason) });
    }
  });
  return report;
}

/** Moves the backup's expiry-index key later (held, or backing off after a failure); expires_at is unchanged. */
async function deferInIndex(deps: Db, b: SweptBackup, until: Date): Promise<boolean> {
  return transactWriteIf(deps, [
    {
      Update: {
        TableName: deps.table,
        Key: keys.backup(b.project_id, b.id),
        UpdateExpression: "SET gsi2sk = :sk",
        ConditionExpression: "gsi2pk = :p",
        ExpressionAttributeValues: { ":sk": `${iso(until)}#${b.id}`, ":p": keys.backupExpiryIndex },
      },
    },
  ]);
}

async function deleteArtifact(
  deps: Deps,
  b: SweptBackup,
  claimedBy: string,
  now: Date,
  opts: RetentionOptions,
  jobIds: string[],
): Promise<"deleted" | "busy" | "failed"> {
  const at = iso(now);
  const lease = iso(new Date(now.getTime() + opts.leaseMs));
  const backupKey = keys.backup(b.project_id, b.id);
  const claimBackup = (jobId: string) => ({
    Update: {
      TableName: deps.table,
      Key: backupKey,
      UpdateExpression: "SET delete_job_id = :job, delete_lease_expires_at = :lease",
      ConditionExpression: "gsi2pk = :p AND #state <> :expired AND (attribute_not_exists(delete_lease_expires_at) OR delete_lease_expires_at < :now)",
      ExpressionAttributeNames: { "#state": "state" },
      ExpressionAttributeValues: { ":job": jobId, ":lease": lease, ":p": keys.backupExpiryIndex, ":expired": "expired", ":now": at },
    },
  });
  // A delete that failed before is tried again under the same job (no new job, no new event per
  // try); otherwise a new job. Someone else holding or changing the backup meanwhile: busy.
  const previous = b.delete_job_id ? await getJobItem(deps, b.delete_job_id) : undefined;
  const newJobId = newId("job", now);
  const job =
    previous?.state === "pending" && previous.type === "project.backup_delete"
      ? await reclaimOwnJob(deps, previous, claimedBy, opts.leaseMs, [claimBackup(previous.id)])
      : await createClaimedJob(
          deps,
          {
            id: newJobId,
            organization_id: b.organization_id,
            project_id: b.project_id,
            cluster_id: b.cluster_id,
            database_name: b.database_name,
            type: "project.backup_delete",
            backup_id: b.id,
            schedule_id: null,
            locked_resource: `backup:${b.id}`,
          },
          claimedBy,
          opts.leaseMs,
          [claimBackup(newJobId)],
        );
  if (!job) return "busy";
  const jobId = job.id;
  jobIds.push(jobId);

  let failure: string | undefined;
  try {
    const work = b.state === "failed" ? await getBackupForWork(deps, b.project_id, b.id) : undefined;
    if (work?.cleanup_pending) {
      // A failed backup whose failing path could not clean up: the same cleanup it uses (artifact,
      // every attempt's upload and scratch databases), retried here until it succeeds.
      await cleanupFailedBackup(deps, work);
    } else {
      await deps.s3.send(new DeleteObjectCommand({ Bucket: deps.bucket, Key: b.backup_key }));
    }
  } catch (err) {
    if (!isMissingObject(err)) failure = errorText(err);
  }

  const done = iso(deps.now());
  // The job's end goes through the state machine (fenced on its claim); the backup's change commits with it.
  const settled = (result: JobItem | undefined) => {
    if (!result) throw new Error(`retention: delete job ${jobId} or backup ${b.id} changed while the artifact was being deleted`);
  };

  if (!failure) {
    settled(
      await completeJob(deps, job, {}, [
        {
          Update: {
            TableName: deps.table,
            Key: backupKey,
            UpdateExpression:
              "SET #state = :state, updated_at = :done, artifact_deleted_at = :done REMOVE gsi2pk, gsi2sk, delete_lease_expires_at, cleanup_pending, upload_ids",
            ConditionExpression: "delete_job_id = :job",
            ExpressionAttributeNames: { "#state": "state" },
            // A failed backup keeps saying why it failed; only a completed one becomes expired (SPEC 2).
            ExpressionAttributeValues: { ":state": b.state === "completed" ? "expired" : b.state, ":done": done, ":job": jobId },
          },
        },
      ]),
    );
    return "deleted";
  }

  const failures = (b.delete_failures ?? 0) + 1;
  // A second early, so that the tick `backoff` later (ticks come at the same second each minute) sees it.
  const retryAt = new Date(now.getTime() + Math.min(opts.retryMaxMs, opts.retryBaseMs * 2 ** (failures - 1)) - 1000);
  // The job waits for its next try (pending, the error and the retry time on it); no event: the
  // customer hears of the delete once, when it is done.
  settled(
    await deferOwnJob(deps, job, `could not delete the backup artifact: ${failure.slice(0, 500)}; retrying after ${iso(retryAt)}`, retryAt, [
      {
        Update: {
          TableName: deps.table,
          Key: backupKey,
          UpdateExpression: "SET delete_failures = :n, gsi2sk = :sk REMOVE delete_lease_expires_at",
          ConditionExpression: "delete_job_id = :job",
          ExpressionAttributeValues: { ":n": failures, ":sk": `${iso(retryAt)}#${b.id}`, ":job": jobId },
        },
      },
    ]),
  );
  // Operators see every try (and the backup's delete_failures); customers only the one job.
  deps.log.warn("retention: delete failed, will retry", { backup_id: b.id, job_id: jobId, failures, retry_at: iso(retryAt), error: failure });
  return "failed";
}
