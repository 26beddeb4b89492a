import { randomBytes } from "node:crypto";
import { z } from "../zod.ts";
import { checkApproval, commitWithApproval } from "../approvals/approvals.ts";
import { auditItem, type Actor } from "../audit/audit.ts";
import { newBackupRecords, retentionDaysFor, type BackupItem } from "../backups/backups.ts";
import { keys } from "../db/keys.ts";
import { getItem, setFields, transactWriteIf, updateItemIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { outboxPut, previewDeletedEvent, previewReadyEvent, type TransactItem } from "../events/outbox.ts";
import { newId } from "../ids.ts";
import { getJobItem, newJobItem, type JobItem } from "../jobs/jobs.ts";
import { enqueueCommitted } from "../jobs/queue.ts";
import { confirmCommitted, jobFromRecord } from "../jobs/request.ts";
import { open, seal } from "../orgs/secretbox.ts";
import type { Project } from "../orgs/orgs.ts";
import { getPreview, previewDatabaseName, previewItem, type AlsoWrites, type PreviewItem } from "../previews/previews.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;
type Writer = Db & Pick<Deps, "sqs" | "queueUrl" | "log" | "secretKey">;

/**
 * Putting data into a project's database: promoting a preview (`project.promote_preview`) and
 * restoring a backup over the project (`project.restore` with `target_kind: project`). Both are one
 * job in phases, recorded on a promotion item beside the job (`JOB#<job>` / `PROMOTE`):
 *
 * 1. `restore` (overwrite restores only): the backup into a hidden database, row counts checked;
 * 2. `safety_backup`: a `project.backup` job of the project's current database, waited for until
 *    it is completed and verified (its id is minted with the request, so it is on the job from the
 *    start: `backup_id`);
 * 3. `swap`: the cutover (core/promote/swap.ts): the project's name now holds the new data, the
 *    old database is parked under a new preview's name;
 * 4. `finish`: the parked database becomes the `pre-promote-<date>` preview (24 h), the incoming
 *    role is dropped, the promoted preview is marked deleted; the job completes.
 *
 * Each phase is recorded before the next begins and each first looks at the world, so an attempt
 * killed anywhere is resumed by the next one. Until the rename the project's database is untouched.
 */
export const promotionKinds = ["promote_preview", "restore_overwrite"] as const;
export const promotionPhases = ["restore", "safety_backup", "swap", "finish", "done"] as const;
export type PromotionPhase = (typeof promotionPhases)[number];

/** How long the replaced data is kept as a preview: the window to undo. */
export const PARKED_TTL_HOURS = 24;

export const promotionItem = z.object({
  item_type: z.literal("promotion"),
  job_id: z.string(),
  organization_id: z.string(),
  project_id: z.string(),
  cluster_id: z.string(),
  kind: z.enum(promotionKinds),
  phase: z.enum(promotionPhases),
  project_database: z.string(),
  /** The database that becomes the project's: the preview's, or the hidden restore target. */
  incoming_database: z.string(),
  incoming_role: z.string(),
  /** The hidden restore target's role password (overwrite restores); a preview's stays on the preview. */
  incoming_password_sealed: z.string().nullable(),
  incoming_preview_id: z.string().nullable(),
  /** The backup an overwrite restore puts into the project. */
  source_backup_id: z.string().nullable(),
  safety_backup_id: z.string(),
  safety_job_id: z.string().nullable(),
  parked_preview_id: z.string(),
  parked_database: z.string(),
  parked_name: z.string(),
  parked_password_sealed: z.string(),
  /** The project's database as it was before the swap: its owner and who could connect. */
  project_role: z.string().nullable(),
  project_acl: z.array(z.object({ grantee: z.string().nullable(), privilege: z.enum(["CONNECT", "TEMPORARY", "CREATE"]) })).nullable(),
  plan_recorded: z.boolean(),
  /** One line per phase reached, shown on the job (`last_stdout`). */
  progress: z.array(z.string()),
  approval_id: z.string(),
  requested_by_actor_kind: z.string(),
  requested_by_actor_id: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type PromotionItem = z.infer<typeof promotionItem>;

export async function getPromotion(deps: Db, jobId: string): Promise<PromotionItem | undefined> {
  return getItem(deps, promotionItem, keys.promotion(jobId));
}

/** `pre-promote-2026-11-30-021503`: when the data was replaced (UTC). */
export const parkedPreviewName = (at: Date) => `pre-promote-${iso(at).slice(0, 10)}-${iso(at).slice(11, 19).replace(/:/g, "")}`;

/** The hidden database (and role) an overwrite restore restores into: `capydb_rst_<job ulid>`. */
export const hiddenRestoreDatabase = (jobId: string) => `capydb_rst_${jobId.replace(/^job_/, "")}`;

const guardItem = z.object({ job_id: z.string() });

/**
 * A project has at most one promote or overwrite restore in progress: the guard names its job, and
 * a new one may replace it only once that job is finished (conditional on the job read here).
 */
async function guardWrite(deps: Db, project: Project, jobId: string) {
  const guard = await getItem(deps, guardItem, keys.promoteGuard(project.id));
  if (guard) {
    const running = await getJobItem(deps, guard.job_id);
    if (running && (running.state === "pending" || running.state === "running")) {
      throw new AppError(
        "conflict",
        `job ${running.id} (${running.type}) is already replacing project ${project.id}'s database: wait until it finishes (capydb jobs get ${running.id} --wait)`,
      );
    }
  }
  return {
    Put: {
      TableName: deps.table,
      Item: { ...keys.promoteGuard(project.id), job_id: jobId, updated_at: iso(deps.now()) },
      ConditionExpression: guard ? "job_id = :previous" : "attribute_not_exists(pk)",
      ...(guard ? { ExpressionAttributeValues: { ":previous": guard.job_id } } : {}),
    },
  };
}

interface Start {
  kind: PromotionItem["kind"];
  incoming: { database: string; role: string; passwordSealed: string | null; previewId: string | null };
  sourceBackupId: string | null;
  /** Checked in the transaction that consumes the approval: what must still hold (the preview as read). */
  checks?: TransactItem[];
}

/** The job, the promotion and the guard, committed with the approval's consumption and the request's audit event. */
async function start(
  deps: Writer,
  project: Project,
  token: string | undefined,
  actor: Actor,
  jobId: string,
  s: Start,
  audit: {
    action: "preview.promote_requested" | "project.restore_overwrite_requested";
    target_type: string;
    target_id: string;
    metadata?: Record<string, unknown>;
  },
  also: AlsoWrites = () => [],
) {
  const now = deps.now();
  const at = iso(now);
  const safetyBackupId = newId("backup", now);
  const parkedId = newId("preview", now);
  const job = newJobItem(now, {
    id: jobId,
    organization_id: project.organization_id,
    project_id: project.id,
    cluster_id: project.cluster_id,
    // The job holds the project database's lock while it works: no backup, export or other
    // cutover of that database runs at the same time.
    database_name: project.database_name,
    type: s.kind === "promote_preview" ? "project.promote_preview" : "project.restore",
    // A promote's backup is its safety backup; an overwrite restore's, the backup it restores.
    backup_id: s.kind === "promote_preview" ? safetyBackupId : s.sourceBackupId,
    preview_database_id: s.incoming.previewId,
  });
  const promotion: PromotionItem = {
    item_type: "promotion",
    job_id: jobId,
    organization_id: project.organization_id,
    project_id: project.id,
    cluster_id: project.cluster_id,
    kind: s.kind,
    phase: s.kind === "restore_overwrite" ? "restore" : "safety_backup",
    project_database: project.database_name,
    incoming_database: s.incoming.database,
    incoming_role: s.incoming.role,
    incoming_password_sealed: s.incoming.passwordSealed,
    incoming_preview_id: s.incoming.previewId,
    source_backup_id: s.sourceBackupId,
    safety_backup_id: safetyBackupId,
    safety_job_id: null,
    parked_preview_id: parkedId,
    parked_database: previewDatabaseName(parkedId),
    parked_name: parkedPreviewName(now),
    parked_password_sealed: seal(deps.secretKey, randomBytes(24).toString("base64url")),
    project_role: null,
    project_acl: null,
    plan_recorded: false,
    progress: [],
    approval_id: "",
    requested_by_actor_kind: actor.kind,
    requested_by_actor_id: actor.id,
    created_at: at,
    updated_at: at,
  };
  const ids = { job_id: jobId, safety_backup_id: safetyBackupId, parked_preview_id: parkedId, preview_id: s.incoming.previewId, backup_id: s.sourceBackupId };
  const approvalAction = s.kind === "promote_preview" ? "project.promote_preview" : "project.restore_overwrite";
  const use = { project, action: approvalAction, actor, target_type: "job", target_id: jobId, metadata: ids } as const;
  // The approval first: a caller without one learns nothing about what else is going on. Its id
  // goes on the promotion; it is consumed with the writes (and checked again there).
  const approval = await checkApproval(deps, token, use);
  const guard = await guardWrite(deps, project, jobId);
  // The approval's id is known only once checked: commitWithApproval checks it, then commits these.
  const writes = (approvalId: string) => [
    { Put: { TableName: deps.table, Item: job } },
    {
      Put: {
        TableName: deps.table,
        Item: { ...keys.promotion(jobId), ...promotion, approval_id: approvalId },
        ConditionExpression: "attribute_not_exists(pk)",
      },
    },
    guard,
    auditItem(deps, {
      organization_id: project.organization_id,
      project_id: project.id,
      action: audit.action,
      actor,
      target_type: audit.target_type,
      target_id: audit.target_id,
      metadata: { ...ids, ...audit.metadata },
    }),
    ...(s.checks ?? []),
    ...also(jobId),
  ];
  await confirmCommitted(
    deps,
    jobId,
    () => commitWithApproval(deps, token, use, writes(approval.id), `project ${project.id} changed while this request was made: try again`),
    approval,
  );
  await enqueueCommitted(deps, jobId);
  return { job: jobFromRecord(job), promotion };
}

/**
 * `POST /v1/preview-databases/{id}/promote`: the preview's data becomes the project's database.
 * Refused (4xx, saying why) unless the preview is ready, on the project's cluster, and no other
 * cutover of the project is in progress; the approval must be an unused `project.promote_preview`
 * approval of this project.
 */
export async function requestPromote(deps: Writer, project: Project, preview: PreviewItem, token: string | undefined, actor: Actor) {
  if (preview.project_id !== project.id) throw new AppError("not_found", `preview ${preview.id} not found`);
  if (preview.state !== "ready") {
    throw new AppError("conflict", `preview ${preview.id} is ${preview.state}: only a ready preview can be promoted`);
  }
  if (preview.cluster_id !== project.cluster_id) {
    throw new AppError("conflict", `preview ${preview.id} is on another cluster than project ${project.id}'s database: it cannot be promoted`);
  }
  const jobId = newId("job", deps.now());
  // The preview must still be the ready one read here when the approval is consumed: a delete,
  // reset or restore accepted meanwhile refuses the promote (409) and leaves the approval unused.
  const unchanged: TransactItem = {
    ConditionCheck: {
      TableName: deps.table,
      Key: keys.preview(preview.id),
      ConditionExpression: "#state = :ready AND job_id = :job",
      ExpressionAttributeNames: { "#state": "state" },
      ExpressionAttributeValues: { ":ready": "ready", ":job": preview.job_id },
    },
  };
  try {
    return await start(
      deps,
      project,
      token,
      actor,
      jobId,
      {
        kind: "promote_preview",
        incoming: { database: preview.database_name, role: preview.role_name, passwordSealed: null, previewId: preview.id },
        sourceBackupId: null,
        checks: [unchanged],
      },
      { action: "preview.promote_requested", target_type: "preview", target_id: preview.id },
    );
  } catch (err) {
    if (!(err instanceof AppError && err.code === "conflict")) throw err;
    const now = await getPreview(deps, preview.id);
    if (now && (now.state !== "ready" || now.job_id !== preview.job_id)) {
      throw new AppError(
        "conflict",
        `preview ${preview.id} is now ${now.state} (job ${now.job_id}): only a ready preview can be promoted; the approval was not used`,
      );
    }
    throw err;
  }
}

/** Production projects are never overwritten straight from a backup (409, saying what to do instead). */
export function refuseOverwriteOfProduction(project: Pick<Project, "id" | "environment">): void {
  if (project.environment === "production") {
    throw new AppError(
      "conflict",
      `project ${project.id} is a production project: restoring over its database is refused. Restore into a preview (target_kind new_preview), check it, then promote it (POST /v1/preview-databases/{previewID}/promote)`,
    );
  }
}

/**
 * `POST /restores` with `target_kind: project`: restore `backup` into a hidden database, check it,
 * then the same phases as a promote. Refused for production projects (restore into a preview and
 * promote it: the data can be looked at before it replaces anything).
 */
export async function requestRestoreOverwrite(
  deps: Writer,
  project: Project,
  backup: BackupItem | null,
  token: string | undefined,
  actor: Actor,
  /** A point-in-time overwrite: no backup; the job's pitr request (written with it) names the time. */
  pitr?: { restore_time: string; also: AlsoWrites },
) {
  refuseOverwriteOfProduction(project);
  const jobId = newId("job", deps.now());
  const hidden = hiddenRestoreDatabase(jobId);
  return start(
    deps,
    project,
    token,
    actor,
    jobId,
    {
      kind: "restore_overwrite",
      incoming: { database: hidden, role: hidden, passwordSealed: seal(deps.secretKey, randomBytes(24).toString("base64url")), previewId: null },
      sourceBackupId: backup?.id ?? null,
    },
    {
      action: "project.restore_overwrite_requested",
      target_type: "project",
      target_id: project.id,
      metadata: pitr ? { restore_time: pitr.restore_time } : undefined,
    },
    pitr?.also,
  );
}

// ---------------------------------------------------------------------------------------------
// The worker's writes.

export const promotionSecret = (deps: Pick<Deps, "secretKey">, sealed: string) => open(deps.secretKey, sealed);

/** Moves the promotion from `from` to `to` (conditional: a stale attempt cannot move it back), adding a progress line. */
export async function advancePromotion(
  deps: Db,
  p: PromotionItem,
  to: PromotionPhase,
  fields: Partial<PromotionItem> = {},
  line?: string,
): Promise<PromotionItem> {
  const progress = line ? [...p.progress, line] : p.progress;
  const set = setFields({ ...fields, phase: to, progress, updated_at: iso(deps.now()) });
  const next = await updateItemIf(deps, promotionItem, {
    Key: keys.promotion(p.job_id),
    ...set,
    ConditionExpression: "#phase = :from",
    ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":from": p.phase },
  });
  if (next) return next;
  const now = await getPromotion(deps, p.job_id);
  if (!now) throw new Error(`the promotion of job ${p.job_id} disappeared`);
  return now;
}

/** Adds fields to the promotion without changing its phase (conditional on the phase read). */
export async function notePromotion(deps: Db, p: PromotionItem, fields: Partial<PromotionItem>, line?: string): Promise<PromotionItem> {
  return advancePromotion(deps, p, p.phase, fields, line);
}

/** The phase write that commits with the job's completion (in `completeJob`'s transaction). */
export function promotionDoneItem(deps: Pick<Deps, "table" | "now">, p: PromotionItem, line: string) {
  const set = setFields({ phase: "done", progress: [...p.progress, line], updated_at: iso(deps.now()) });
  return {
    Update: {
      TableName: deps.table,
      Key: keys.promotion(p.job_id),
      ...set,
      UpdateExpression: set.UpdateExpression!,
      ConditionExpression: "#phase = :from",
      ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":from": p.phase },
    },
  };
}

/**
 * The safety backup's records: a pending Backup (the id minted with the request) and its
 * `project.backup` job, recorded on the promotion, in one transaction; the job is then enqueued.
 * Idempotent: a second call finds the job already recorded.
 */
export async function requestSafetyBackup(deps: Writer, project: Project, p: PromotionItem, promoteJob: JobItem): Promise<PromotionItem> {
  if (p.safety_job_id) return p;
  const now = deps.now();
  const retentionDays = await retentionDaysFor(deps, project.id);
  const { backupItem, job } = newBackupRecords(project, now, {
    backupId: p.safety_backup_id,
    retentionDays,
    label: `safety backup before ${p.kind === "promote_preview" ? "promote" : "restore"} (${promoteJob.id})`,
    scheduleId: null,
  });
  const jobId = job.id;
  const line = `${iso(now)} safety backup ${p.safety_backup_id} requested (job ${jobId})`;
  const set = setFields({ safety_job_id: jobId, progress: [...p.progress, line], updated_at: iso(now) });
  const ok = await transactWriteIf(deps, [
    { Put: { TableName: deps.table, Item: backupItem, ConditionExpression: "attribute_not_exists(pk)" } },
    { Put: { TableName: deps.table, Item: job } },
    {
      Update: {
        TableName: deps.table,
        Key: keys.promotion(p.job_id),
        ...set,
        UpdateExpression: set.UpdateExpression!,
        ConditionExpression: "attribute_type(safety_job_id, :null)",
        ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":null": "NULL" },
      },
    },
    auditItem(deps, {
      organization_id: project.organization_id,
      project_id: project.id,
      action: "backup.requested",
      actor: { kind: "system", id: promoteJob.id },
      target_type: "backup",
      target_id: backupItem.id,
      metadata: { backup_id: backupItem.id, job_id: jobId, label: backupItem.label, retention_days: retentionDays, for_job_id: promoteJob.id },
    }),
  ]);
  const now2 = (await getPromotion(deps, p.job_id))!;
  if (ok) await enqueueCommitted(deps, jobId);
  return now2;
}

// Previews the cutover creates and retires. Written here rather than through the preview
// module's job transitions: the parked preview is made by this job, not by a preview job.

/**
 * The parked database's preview (`pre-promote-<date>`), created `provisioning` before the swap
 * (so a failure after the rename still leaves a record of the old data) and counted against the
 * project's live previews without the limit: the old data must be kept whatever the count.
 */
export async function createParkedPreview(deps: Db, p: PromotionItem): Promise<void> {
  const now = deps.now();
  const at = iso(now);
  const preview: PreviewItem = {
    item_type: "preview",
    id: p.parked_preview_id,
    organization_id: p.organization_id,
    project_id: p.project_id,
    name: p.parked_name,
    mode: "clone",
    state: "provisioning",
    database_name: p.parked_database,
    source_backup_id: p.safety_backup_id,
    error: null,
    expires_at: iso(new Date(now.getTime() + PARKED_TTL_HOURS * 3600_000)),
    created_at: at,
    updated_at: at,
    cluster_id: p.cluster_id,
    role_name: p.parked_database,
    password_sealed: p.parked_password_sealed,
    job_id: p.job_id,
    action: "create",
    action_backup_id: null,
    action_recreate: false,
    action_started: true,
    counted: true,
  };
  await transactWriteIf(deps, [
    {
      Put: {
        TableName: deps.table,
        Item: { ...keys.preview(preview.id), gsi1pk: keys.projectPreviewsIndex(p.project_id), gsi1sk: preview.id, ...preview },
        ConditionExpression: "attribute_not_exists(pk)",
      },
    },
    { Update: { TableName: deps.table, Key: keys.livePreviews(p.project_id), UpdateExpression: "ADD live :one", ExpressionAttributeValues: { ":one": 1 } } },
  ]);
}

/**
 * The parked preview holds the old data: ready, expiring 24 hours from now (the undo window), with
 * `preview.ready` in the same transaction. Conditional on the preview still provisioning for this
 * job, so a redelivered job announces nothing again.
 */
export async function markParkedReady(deps: Db, p: PromotionItem): Promise<PreviewItem | undefined> {
  const parked = await getItem(deps, previewItem, keys.preview(p.parked_preview_id));
  if (!parked || parked.job_id !== p.job_id || parked.state !== "provisioning") return undefined;
  const now = deps.now();
  const at = iso(now);
  const expires = iso(new Date(now.getTime() + PARKED_TTL_HOURS * 3600_000));
  const set = setFields({
    state: "ready",
    error: null,
    expires_at: expires,
    updated_at: at,
    gsi2pk: keys.previewExpiryIndex,
    gsi2sk: `${expires}#${p.parked_preview_id}`,
  });
  const committed = await transactWriteIf(deps, [
    {
      Update: {
        TableName: deps.table,
        Key: keys.preview(p.parked_preview_id),
        ...set,
        UpdateExpression: set.UpdateExpression!,
        ConditionExpression: "job_id = :job AND #state = :provisioning",
        ExpressionAttributeNames: { ...set.ExpressionAttributeNames, "#state": "state" },
        ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":job": p.job_id, ":provisioning": "provisioning" },
      },
    },
    outboxPut(deps, previewReadyEvent({ ...parked, expires_at: expires }, p.job_id, at)),
  ]);
  return committed ? getItem(deps, previewItem, keys.preview(p.parked_preview_id)) : undefined;
}

/** The swap never happened: the parked preview's record goes (not counted any more). */
export async function dropParkedRecord(deps: Db, p: PromotionItem, error: string): Promise<void> {
  const set = setFields({ state: "deleted", error, counted: false, updated_at: iso(deps.now()), gsi2pk: undefined, gsi2sk: undefined });
  await transactWriteIf(deps, [
    {
      Update: {
        TableName: deps.table,
        Key: keys.preview(p.parked_preview_id),
        ...set,
        UpdateExpression: set.UpdateExpression!,
        ConditionExpression: "job_id = :job AND #state = :provisioning AND counted = :yes",
        ExpressionAttributeNames: { ...set.ExpressionAttributeNames, "#state": "state" },
        ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":job": p.job_id, ":provisioning": "provisioning", ":yes": true },
      },
    },
    {
      Update: {
        TableName: deps.table,
        Key: keys.livePreviews(p.project_id),
        UpdateExpression: "ADD live :minus",
        ConditionExpression: "live > :zero",
        ExpressionAttributeValues: { ":minus": -1, ":zero": 0 },
      },
    },
  ]);
}

/**
 * The promoted preview's database is the project's now: the preview is `deleted` (its role was
 * dropped) and frees its place. Skipped when a request changed it meanwhile (a delete already
 * counted it out).
 */
export async function retirePromotedPreview(deps: Db, previewId: string, promoteJobId: string): Promise<void> {
  const preview = await getItem(deps, previewItem, keys.preview(previewId));
  if (!preview || preview.state === "deleted") return;
  const at = iso(deps.now());
  const set = setFields({ state: "deleted", error: null, counted: false, updated_at: at, gsi2pk: undefined, gsi2sk: undefined });
  const writes: Parameters<typeof transactWriteIf>[1] = [
    {
      Update: {
        TableName: deps.table,
        Key: keys.preview(previewId),
        ...set,
        UpdateExpression: set.UpdateExpression!,
        ConditionExpression: "job_id = :job AND #state = :was",
        ExpressionAttributeNames: { ...set.ExpressionAttributeNames, "#state": "state" },
        ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":job": preview.job_id, ":was": preview.state },
      },
    },
    // Its database lives on as the project's; subscribers hear that the preview is gone.
    outboxPut(deps, previewDeletedEvent(preview, promoteJobId, at)),
  ];
  if (preview.counted) {
    writes.push({
      Update: {
        TableName: deps.table,
        Key: keys.livePreviews(preview.project_id),
        UpdateExpression: "ADD live :minus",
        ConditionExpression: "live > :zero",
        ExpressionAttributeValues: { ":minus": -1, ":zero": 0 },
      },
    });
  }
  await transactWriteIf(deps, writes);
}
