import { AbortMultipartUploadCommand, DeleteObjectCommand } from "@aws-sdk/client-s3";
import { z } from "../zod.ts";
import { exportSchema } from "../contract/exports.ts";
import { keys } from "../db/keys.ts";
import { auditItem, type Actor } from "../audit/audit.ts";
import { getItem, queryPage, setFields, transactWriteIf, updateItem, type Page } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import type { Artifact } from "../downloads/downloads.ts";
import { AppError } from "../errors.ts";
import { exportCompletedEvent, outboxPut } from "../events/outbox.ts";
import { newId } from "../ids.ts";
import { newJobItem, type JobItem } from "../jobs/jobs.ts";
import { commitJobRequest } from "../jobs/request.ts";
import type { Project } from "../orgs/orgs.ts";

/**
 * An export: a pg_dump of the project's database made for the customer to download, through the
 * same pipeline as a backup (snapshot, streamed, SHA-256, no temporary file) but under its own key
 * prefix and kept `exportRetentionDays` (7 by default). It is not a backup: it is stored under its
 * own sort key (EXP#), so it never appears in the backups list, never counts for the backups'
 * retention or safety rule, and is not restore-verified (the customer checks size and SHA-256).
 */
type Db = Pick<Deps, "ddb" | "table" | "now">;

export type Export = z.infer<typeof exportSchema>;

export const exportItem = exportSchema.extend({
  item_type: z.literal("export"),
  organization_id: z.string(),
  cluster_id: z.string(),
  job_id: z.string(),
  export_key: z.string(),
  sha256: z.string().nullable(),
  pg_dump_version: z.string().nullable(),
  server_version: z.string().nullable(),
  /** Why it failed (the job's error), for the download's 409. */
  error: z.string().nullable(),
  completed_at: z.string().nullable(),
  updated_at: z.string(),
  /** The multipart upload in flight, so that a later attempt can abort it if this one dies. */
  upload_id: z.string().nullish(),
  /** When the dispatcher deleted the dump. */
  artifact_deleted_at: z.string().nullish(),
});
export type ExportItem = z.infer<typeof exportItem>;

export const toExport = (item: ExportItem): Export => exportSchema.parse(item);

/** Exports live under their own prefix, apart from backups (`projects/<prj>/backups/`). */
export const exportObjectKey = (projectId: string, exportId: string) => `exports/${projectId}/${exportId}.dump`;

/**
 * Writes a pending Export and its pending `project.export` Job in one transaction (with the
 * request's audit event), then sends the job to the queue, as a backup request does
 * (core/jobs/request.ts): a failed send leaves the job committed and due, and the dispatcher's
 * reaper enqueues it.
 */
export async function requestExport(
  deps: Db & Pick<Deps, "sqs" | "queueUrl" | "log" | "exportRetentionDays">,
  project: Project,
  /** Who asked: an `export.requested` audit event commits with the export. */
  actor?: Actor,
): Promise<{ export: ExportItem; job: JobItem }> {
  const now = deps.now();
  const at = iso(now);
  const exportId = newId("export", now);
  const jobId = newId("job", now);
  const item: ExportItem = {
    item_type: "export",
    id: exportId,
    project_id: project.id,
    organization_id: project.organization_id,
    cluster_id: project.cluster_id,
    database_name: project.database_name,
    state: "pending",
    size_bytes: 0,
    created_at: at,
    expires_at: iso(new Date(now.getTime() + deps.exportRetentionDays * 86_400_000)),
    job_id: jobId,
    export_key: exportObjectKey(project.id, exportId),
    sha256: null,
    pg_dump_version: null,
    server_version: null,
    error: null,
    completed_at: null,
    updated_at: at,
  };
  const job = newJobItem(now, {
    id: jobId,
    organization_id: project.organization_id,
    project_id: project.id,
    cluster_id: project.cluster_id,
    database_name: project.database_name,
    type: "project.export",
    backup_id: null,
    export_id: exportId,
  });
  const { job: committed } = await commitJobRequest(deps, {
    projectId: project.id,
    item: { ...keys.export(project.id, exportId), ...item },
    job,
    audit: actor
      ? auditItem(deps, {
          organization_id: project.organization_id,
          project_id: project.id,
          action: "export.requested",
          actor,
          target_type: "export",
          target_id: exportId,
          metadata: { export_id: exportId, job_id: jobId, database_name: project.database_name, expires_at: item.expires_at },
        })
      : undefined,
  });
  return { export: item, job: committed };
}

export async function getExport(deps: Db, projectId: string, exportId: string): Promise<ExportItem | undefined> {
  return getItem(deps, exportItem, keys.export(projectId, exportId));
}

/** Newest first. */
export async function listExports(deps: Db, projectId: string, limit: number, cursor?: string): Promise<Page<ExportItem>> {
  return queryPage(
    deps,
    exportItem,
    {
      KeyConditionExpression: "pk = :p AND begins_with(sk, :e)",
      ExpressionAttributeValues: { ":p": keys.project(projectId).pk, ":e": keys.exportPrefix },
      ScanIndexForward: false,
      Limit: limit,
    },
    cursor,
  );
}

/**
 * The dump of an export that may be downloaded, or a 409 saying why not: only a completed export
 * before its `expires_at` (past it, the dispatcher deletes the dump on its next tick).
 */
export function exportArtifact(exp: ExportItem, now: Date): Artifact {
  switch (exp.state) {
    case "pending":
    case "running":
      throw new AppError("conflict", `export ${exp.id} is ${exp.state}: it can be downloaded once it has completed`);
    case "failed":
      throw new AppError("conflict", `export ${exp.id} failed, so there is nothing to download${exp.error ? `: ${exp.error}` : ""}`);
    case "expired":
      throw new AppError("conflict", `export ${exp.id} expired at ${exp.expires_at} and its dump was deleted: request a new export`);
    case "completed":
      break;
  }
  if (Date.parse(exp.expires_at) <= now.getTime()) {
    throw new AppError("conflict", `export ${exp.id} expired at ${exp.expires_at}: request a new export`);
  }
  if (!exp.sha256) throw new AppError("conflict", `export ${exp.id} has no recorded checksum, so it cannot be downloaded safely`);
  return { key: exp.export_key, size_bytes: exp.size_bytes, sha256: exp.sha256, filename: `${exp.id}.dump` };
}

// ---------------------------------------------------------------------------------------------
// The worker's transitions: each is conditional on the export still belonging to the job and not
// being settled, so a late or duplicate run never rewrites a settled export.

function unsettledUpdate(deps: Db, exp: Pick<ExportItem, "project_id" | "id" | "job_id">, fields: Record<string, unknown>) {
  const set = setFields({ ...fields, updated_at: iso(deps.now()) });
  return {
    Key: keys.export(exp.project_id, exp.id),
    ...set,
    UpdateExpression: set.UpdateExpression!,
    ConditionExpression: "attribute_exists(pk) AND job_id = :job AND #state IN (:pending, :running)",
    ExpressionAttributeNames: { ...set.ExpressionAttributeNames, "#state": "state" },
    ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":job": exp.job_id, ":pending": "pending", ":running": "running" },
  };
}

async function updateUnsettledExport(
  deps: Db,
  exp: Pick<ExportItem, "project_id" | "id" | "job_id">,
  fields: Record<string, unknown>,
): Promise<ExportItem | undefined> {
  try {
    return await updateItem(deps, exportItem, unsettledUpdate(deps, exp, fields));
  } catch (err) {
    if (err instanceof AppError && err.code === "conflict") return undefined;
    throw err;
  }
}

export const markExportRunning = (deps: Db, exp: ExportItem) => updateUnsettledExport(deps, exp, { state: "running", error: null });

export const recordExportUpload = (deps: Db, exp: ExportItem, uploadId: string | null) =>
  updateUnsettledExport(deps, exp, { upload_id: uploadId ?? undefined });

/** The dump is in object storage: its size, checksum and tool versions (the export stays running). */
export const updateExportArtifact = (
  deps: Db,
  exp: ExportItem,
  artifact: { size_bytes: number; sha256: string; pg_dump_version: string; server_version: string },
) => updateUnsettledExport(deps, exp, { ...artifact, upload_id: undefined });

/**
 * Complete: from now on it has a dump, so it enters the expiry index the dispatcher reads (gsi2
 * EXPEXP). `export.completed` commits with it; the same unsettled-state condition makes a second
 * call (a redelivered message repairing a lost completion) write nothing and announce nothing.
 */
export async function markExportCompleted(deps: Db, exp: ExportItem): Promise<ExportItem | undefined> {
  const at = iso(deps.now());
  const update = unsettledUpdate(deps, exp, {
    state: "completed",
    error: null,
    completed_at: at,
    upload_id: undefined,
    gsi2pk: keys.exportExpiryIndex,
    gsi2sk: `${exp.expires_at}#${exp.id}`,
  });
  const committed = await transactWriteIf(deps, [{ Update: { TableName: deps.table, ...update } }, outboxPut(deps, exportCompletedEvent(exp, at))]);
  return committed ? getExport(deps, exp.project_id, exp.id) : undefined;
}

/** Back to pending: the job failed transiently and will run again. */
export const markExportPending = (deps: Db, exp: ExportItem, error: string) =>
  updateUnsettledExport(deps, exp, { state: "pending", size_bytes: 0, sha256: null, error, upload_id: undefined });

/** Failed for good (its job failed); nothing is left in storage. */
export const markExportFailed = (deps: Db, exp: ExportItem, error: string) =>
  updateUnsettledExport(deps, exp, { state: "failed", size_bytes: 0, sha256: null, error, upload_id: undefined });

/**
 * The export of a job the reaper failed (its worker died on the last attempt): failed too, and
 * whatever the dead attempt left in storage (an upload in flight, a finished object) removed.
 */
export async function failDeadExport(deps: Db & Pick<Deps, "s3" | "bucket">, job: Pick<JobItem, "project_id" | "export_id">, why: string): Promise<void> {
  if (!job.export_id) return;
  const exp = await getExport(deps, job.project_id, job.export_id);
  if (!exp) return;
  const failed = await markExportFailed(deps, exp, `the export did not complete: ${why}`);
  if (!failed) return;
  if (exp.upload_id) {
    await deps.s3.send(new AbortMultipartUploadCommand({ Bucket: deps.bucket, Key: exp.export_key, UploadId: exp.upload_id })).catch(() => undefined);
  }
  await deps.s3.send(new DeleteObjectCommand({ Bucket: deps.bucket, Key: exp.export_key })).catch(() => undefined);
}
