import { createHash } from "node:crypto";
import { z } from "../zod.ts";
import { backupSchema, requestBackupInput } from "../contract/backups.ts";
import { auditItem, type Actor } from "../audit/audit.ts";
import { keys } from "../db/keys.ts";
import { getItem, queryPage, setFields, transactWriteIf, updateItemIf, type Page } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { backupCompletedEvent, outboxPut, type TransactItem } from "../events/outbox.ts";
import { newId } from "../ids.ts";
import { newJobItem, type JobItem } from "../jobs/jobs.ts";
import { commitJobRequest, replayIdempotent } from "../jobs/request.ts";
import type { Project } from "../orgs/orgs.ts";
import { getSchedule } from "./schedules.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

export type Backup = z.infer<typeof backupSchema>;

export const backupItem = backupSchema.extend({
  item_type: z.literal("backup"),
  organization_id: z.string(),
  cluster_id: z.string(),
  job_id: z.string(),
  schedule_id: z.string().nullable(),
  expires_at: z.string(),
  updated_at: z.string(),
  sha256: z.string().nullable(),
  pg_dump_version: z.string().nullable(),
  server_version: z.string().nullable(),
  /** Row count of every table in the dump's snapshot ("schema.table" -> rows). */
  row_counts: z.record(z.string(), z.number()).nullable(),
  dump_ms: z.number().nullable(),
  restore_ms: z.number().nullable(),
});
export type BackupItem = z.infer<typeof backupItem>;

export const toBackup = (item: BackupItem): Backup => backupSchema.parse(item);

export const DEFAULT_RETENTION_DAYS = 14;
export const backupObjectKey = (projectId: string, backupId: string) => `projects/${projectId}/backups/${backupId}.dump`;

export type RequestBackupInput = z.infer<typeof requestBackupInput>;

export interface RequestBackupOptions {
  /** Idempotency-Key header: the same key and body within 24 h answers the original job. */
  idempotencyKey?: string;
  scheduleId?: string;
  /** Who asked: a `backup.requested` audit event commits with the backup (API requests). */
  actor?: Actor;
}

/**
 * Writes a pending Backup and its pending `project.backup` Job in one transaction (with the
 * request's audit event and Idempotency-Key record), then sends the job to the queue: see
 * core/jobs/request.ts. If the send fails the job is still committed and the dispatcher's reaper
 * enqueues it again (pending jobs are indexed by due time), so the caller gets its job either way.
 */
export async function requestBackup(
  deps: Db & Pick<Deps, "sqs" | "queueUrl" | "log">,
  project: Project,
  input: RequestBackupInput,
  opts: RequestBackupOptions = {},
): Promise<{ job: JobItem; created: boolean }> {
  const data = requestBackupInput.parse(input);
  const now = deps.now();
  const requestHash = createHash("sha256")
    .update(JSON.stringify({ label: data.label ?? null, retention_days: data.retention_days ?? null }))
    .digest("hex");
  const idempotency = opts.idempotencyKey ? { key: opts.idempotencyKey, requestHash } : undefined;

  const replayed = await replayIdempotent(deps, project.id, idempotency);
  if (replayed) return { job: replayed, created: false };

  const retentionDays = await retentionDaysFor(deps, project.id, data.retention_days);
  const { backupItem: backupRecord, job } = newBackupRecords(project, now, {
    retentionDays,
    label: data.label ?? "manual",
    scheduleId: opts.scheduleId ?? null,
  });
  return commitJobRequest(deps, {
    projectId: project.id,
    item: backupRecord,
    job,
    audit: opts.actor
      ? auditItem(deps, {
          organization_id: project.organization_id,
          project_id: project.id,
          action: "backup.requested",
          actor: opts.actor,
          target_type: "backup",
          target_id: backupRecord.id,
          metadata: { backup_id: backupRecord.id, job_id: job.id, label: backupRecord.label, retention_days: retentionDays },
        })
      : undefined,
    idempotency,
  });
}

/**
 * How long a backup requested now is kept: what the request asked, else the project's schedule's
 * retention, else the default. On-demand backups and a promote's safety backup alike.
 */
export async function retentionDaysFor(deps: Db, projectId: string, requested?: number | null): Promise<number> {
  return requested ?? (await getSchedule(deps, projectId))?.retention_days ?? DEFAULT_RETENTION_DAYS;
}

export async function getBackup(deps: Db, projectId: string, backupId: string): Promise<BackupItem | undefined> {
  return getItem(deps, backupItem, keys.backup(projectId, backupId));
}

/** Newest first. */
export async function listBackups(deps: Db, projectId: string, limit: number, cursor?: string): Promise<Page<BackupItem>> {
  return queryPage(
    deps,
    backupItem,
    {
      KeyConditionExpression: "pk = :p AND begins_with(sk, :b)",
      ExpressionAttributeValues: { ":p": keys.project(projectId).pk, ":b": keys.backupPrefix },
      ScanIndexForward: false,
      Limit: limit,
    },
    cursor,
  );
}

/**
 * A new pending Backup record, the shape `requestBackup` writes; shared with the dispatcher's
 * scheduled runs so the two paths cannot drift. `expires_at` = created_at + retentionDays (SPEC 2).
 */
export function newBackupItem(
  project: Project,
  now: Date,
  opts: { backupId?: string; jobId: string; retentionDays: number; label: string; scheduleId: string | null },
): BackupItem {
  const backupId = opts.backupId ?? newId("backup", now);
  const at = iso(now);
  return {
    item_type: "backup",
    id: backupId,
    project_id: project.id,
    organization_id: project.organization_id,
    cluster_id: project.cluster_id,
    database_name: project.database_name,
    label: opts.label,
    backup_key: backupObjectKey(project.id, backupId),
    size_bytes: 0,
    state: "pending",
    verification_state: "pending",
    verified_at: null,
    verification_error: null,
    created_at: at,
    updated_at: at,
    job_id: opts.jobId,
    schedule_id: opts.scheduleId,
    expires_at: iso(new Date(now.getTime() + opts.retentionDays * 86400_000)),
    sha256: null,
    pg_dump_version: null,
    server_version: null,
    row_counts: null,
    dump_ms: null,
    restore_ms: null,
  };
}

/**
 * The pending Backup and its pending `project.backup` Job, as one request (on-demand or scheduled)
 * creates them. The backup's id is minted just before the job's (same millisecond, monotonic
 * ULIDs), so the pair sorts together.
 */
export function newBackupRecords(
  project: Project,
  now: Date,
  opts: { retentionDays: number; label: string; scheduleId: string | null; availableAt?: Date; backupId?: string },
) {
  // A given backup id was minted earlier (a promote's safety backup, named in its request).
  const backupId = opts.backupId ?? newId("backup", now);
  const jobId = newId("job", now);
  const backup = newBackupItem(project, now, { backupId, jobId, retentionDays: opts.retentionDays, label: opts.label, scheduleId: opts.scheduleId });
  const job = newJobItem(now, {
    id: jobId,
    organization_id: project.organization_id,
    project_id: project.id,
    cluster_id: project.cluster_id,
    database_name: project.database_name,
    type: "project.backup",
    backup_id: backupId,
    schedule_id: opts.scheduleId,
    ...(opts.availableAt ? { available_at: iso(opts.availableAt) } : {}),
  });
  return { backup, job, backupItem: { ...keys.backup(project.id, backupId), ...backup } };
}

// ---------------------------------------------------------------------------------------------
// The backup worker's transitions. Each is conditional on the backup still belonging to the job
// and not being finished, so a late or duplicate run never rewrites a settled backup.

/**
 * The stored backup plus what only the worker (and the cleanup of a failed backup) reads: the
 * attempt that owns it, every multipart upload any attempt started, where verification restored.
 */
export const backupWorkItem = backupItem.extend({
  upload_id: z.string().nullish(),
  /** Every multipart upload any attempt started (a dead attempt's included), for the cleanup. */
  upload_ids: z.array(z.string()).nullish(),
  /** The job attempt that owns the backup: every write an attempt makes is fenced on it. */
  attempt: z.number().int().nullish(),
  /** The verification cluster the scratch databases were made on, when not the project's own. */
  verify_cluster_id: z.string().nullish(),
  /** Set while a failed backup's leftovers (artifact, uploads, scratch databases) may remain. */
  cleanup_pending: z.boolean().nullish(),
});
export type BackupWorkItem = z.infer<typeof backupWorkItem>;

export async function getBackupForWork(deps: Db, projectId: string, backupId: string): Promise<BackupWorkItem | undefined> {
  return getItem(deps, backupWorkItem, keys.backup(projectId, backupId));
}

/** The conditional update of a backup its job still works on (pending or running, same job). */
function unsettledBackupUpdate(deps: Db, backup: Pick<BackupItem, "project_id" | "id" | "job_id">, fields: Record<string, unknown>) {
  const set = setFields({ ...fields, updated_at: iso(deps.now()) });
  return {
    Key: keys.backup(backup.project_id, backup.id),
    ...set,
    ConditionExpression: "attribute_exists(pk) AND job_id = :job AND #state IN (:pending, :running)",
    ExpressionAttributeNames: { ...set.ExpressionAttributeNames, "#state": "state" },
    ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":job": backup.job_id, ":pending": "pending", ":running": "running" },
  };
}

/** The attempt of a job that writes to its backup: its writes are fenced on `attempt`. */
export interface BackupAttempt {
  backup: Pick<BackupItem, "project_id" | "id" | "job_id">;
  attempt: number;
}

async function updateUnsettledBackup(
  deps: Db,
  backup: Pick<BackupItem, "project_id" | "id" | "job_id">,
  fields: Record<string, unknown>,
  fence?: { condition: string; values: Record<string, unknown> },
  extra: { set?: string; values?: Record<string, unknown> } = {},
): Promise<BackupWorkItem | undefined> {
  const set = setFields({ ...fields, updated_at: iso(deps.now()) });
  const expression = extra.set ? set.UpdateExpression!.replace(/^SET /, `SET ${extra.set}, `) : set.UpdateExpression;
  return updateItemIf(deps, backupWorkItem, {
    Key: keys.backup(backup.project_id, backup.id),
    ...set,
    UpdateExpression: expression,
    ConditionExpression: `attribute_exists(pk) AND job_id = :job AND #state IN (:pending, :running)${fence ? ` AND (${fence.condition})` : ""}`,
    ExpressionAttributeNames: { ...set.ExpressionAttributeNames, "#state": "state", ...(fence ? { "#attempt": "attempt" } : {}) },
    ExpressionAttributeValues: {
      ...set.ExpressionAttributeValues,
      ":job": backup.job_id,
      ":pending": "pending",
      ":running": "running",
      ...fence?.values,
      ...extra.values,
    },
  });
}

/**
 * Only the attempt that owns the backup (the newest that started) may write it. A backup no
 * attempt ever marked running (a fixture, a hand repair) has no owner to defend.
 */
const owned = (a: BackupAttempt) => ({ condition: "attribute_not_exists(#attempt) OR #attempt = :attempt", values: { ":attempt": a.attempt } });

/**
 * Attempt `a.attempt` holds the lock and starts dumping: from now on the backup is its own, and
 * every write of an older attempt (one that lost its lease but has not noticed yet) is refused.
 */
export function markBackupRunning(deps: Db, a: BackupAttempt, opts: { verifyClusterId?: string | null } = {}): Promise<BackupWorkItem | undefined> {
  return updateUnsettledBackup(
    deps,
    a.backup,
    {
      state: "running",
      verification_state: "pending",
      verified_at: null,
      verification_error: null,
      attempt: a.attempt,
      verify_cluster_id: opts.verifyClusterId ?? undefined,
    },
    { condition: "attribute_not_exists(#attempt) OR #attempt < :attempt", values: { ":attempt": a.attempt } },
  );
}

/**
 * Remembers the multipart upload in flight (and every one ever started), so that a later attempt
 * and the cleanup of a failed backup can abort it. Undefined when the attempt no longer owns the backup.
 */
export function recordBackupUpload(deps: Db, a: BackupAttempt, uploadId: string): Promise<BackupWorkItem | undefined> {
  return updateUnsettledBackup(deps, a.backup, { upload_id: uploadId }, owned(a), {
    set: "upload_ids = list_append(if_not_exists(upload_ids, :no_uploads), :upload)",
    values: { ":no_uploads": [], ":upload": [uploadId] },
  });
}

export interface BackupArtifact {
  size_bytes: number;
  sha256: string;
  pg_dump_version: string;
  server_version: string;
  row_counts: Record<string, number>;
  dump_ms: number;
}

/** The artifact is in object storage; its restore check starts. */
export function recordBackupArtifact(deps: Db, a: BackupAttempt, artifact: BackupArtifact): Promise<BackupWorkItem | undefined> {
  return updateUnsettledBackup(deps, a.backup, { ...artifact, upload_id: undefined, verification_state: "running" }, owned(a));
}

/**
 * Verified and complete. From now on the backup has an artifact, so it enters the expiry index
 * that the retention sweep reads (gsi2 BKPEXP / <expires_at>#<id>). The job's completion is the
 * fence here (it commits first), so this is not fenced on the attempt: a later delivery repairs it.
 */
export function markBackupCompleted(
  deps: Db,
  backup: BackupItem,
  result: { verified_at: string; restore_ms: number | null },
): Promise<BackupWorkItem | undefined> {
  return updateUnsettledBackup(deps, backup, completedFields(backup, result));
}

/**
 * The same completion as a TransactWrite item, with the backup's `backup.completed` outbox event:
 * the worker commits them in the transaction that completes the job (core/jobs completeJob), so
 * the job, the backup and both events change together or not at all.
 */
export function backupCompletedWrites(deps: Db, backup: BackupItem, result: { verified_at: string; restore_ms: number | null }): TransactItem[] {
  const update = unsettledBackupUpdate(deps, backup, completedFields(backup, result));
  return [
    { Update: { TableName: deps.table, ...update, UpdateExpression: update.UpdateExpression! } },
    outboxPut(deps, backupCompletedEvent({ ...backup, verified_at: result.verified_at })),
  ];
}

/**
 * Completes a backup whose job already completed without it (a worker of an older version died
 * between its two writes), with its event, in one transaction. False when it was settled already.
 */
export async function repairBackupCompleted(deps: Db, backup: BackupItem, result: { verified_at: string; restore_ms: number | null }): Promise<boolean> {
  return transactWriteIf(deps, backupCompletedWrites(deps, backup, result));
}

function completedFields(backup: BackupItem, result: { verified_at: string; restore_ms: number | null }): Record<string, unknown> {
  return {
    state: "completed",
    verification_state: "verified",
    verification_error: null,
    verified_at: result.verified_at,
    // null, not absent: the schema requires the field (a completion repaired after a lost write has no timing).
    restore_ms: result.restore_ms ?? null,
    upload_id: undefined,
    gsi2pk: keys.backupExpiryIndex,
    gsi2sk: `${backup.expires_at}#${backup.id}`,
  };
}

/** Back to pending: the attempt failed transiently and the job will run again. */
export function markBackupPending(deps: Db, a: BackupAttempt): Promise<BackupWorkItem | undefined> {
  return updateUnsettledBackup(deps, a.backup, { state: "pending", verification_state: "pending", size_bytes: 0, sha256: null, row_counts: null }, owned(a));
}

/** How long the path that fails a backup has to clean up before the dispatcher's sweep looks for leftovers. */
export const CLEANUP_GRACE_MS = 10 * 60_000;

/**
 * Failed for good (the job failed). A failed backup will never be verified, so its verification
 * fails with it: `verification_error` is the restore check's finding, or why there was nothing to
 * check. It is marked `cleanup_pending` and put on the expiry index due a little later, so that
 * whatever the failing path could not clean up (artifact, uploads, scratch databases) is found by
 * the dispatcher's retention sweep; `markBackupCleaned` takes it off once nothing is left.
 * Not fenced on an attempt: the job's failure commits first and is the fence.
 */
export function markBackupFailed(deps: Db, backup: BackupItem, failure: { verificationError: string }): Promise<BackupWorkItem | undefined> {
  const due = iso(new Date(deps.now().getTime() + CLEANUP_GRACE_MS));
  return updateUnsettledBackup(deps, backup, {
    state: "failed",
    verification_state: "failed",
    verification_error: failure.verificationError,
    size_bytes: 0,
    upload_id: undefined,
    cleanup_pending: true,
    gsi2pk: keys.backupExpiryIndex,
    gsi2sk: `${due}#${backup.id}`,
  });
}

/** Nothing of the failed backup is left anywhere: off the sweep's index. */
export async function markBackupCleaned(deps: Db, backup: Pick<BackupItem, "project_id" | "id">): Promise<boolean> {
  const set = setFields({ cleanup_pending: undefined, upload_ids: undefined, gsi2pk: undefined, gsi2sk: undefined, updated_at: iso(deps.now()) });
  const done = await updateItemIf(deps, backupWorkItem, {
    Key: keys.backup(backup.project_id, backup.id),
    ...set,
    ConditionExpression: "#state = :failed",
    ExpressionAttributeNames: { ...set.ExpressionAttributeNames, "#state": "state" },
    ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":failed": "failed" },
  });
  return done !== undefined;
}
