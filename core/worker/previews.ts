import { getBackup, type BackupItem } from "../backups/backups.ts";
import type { Deps } from "../deps.ts";
import { completeJob, type JobItem } from "../jobs/jobs.ts";
import { getClusterConnection, getProject } from "../orgs/orgs.ts";
import { createPreviewDatabase, dropPreview, dropPreviewDatabase, emptyPreviewDatabase, ensurePreviewRole, previewConnection } from "../previews/database.ts";
import {
  getPreview,
  markActionStarted,
  markPreviewDeleted,
  markPreviewFailed,
  markPreviewReady,
  previewPassword,
  settlePreviewForJob,
  type PreviewItem,
} from "../previews/previews.ts";
import { WorkerFailure, type ToolReport } from "../pg/classify.ts";
import { ignored, toRunReport, type Attempt, type JobRunner, type RunOutcome } from "./runner.ts";
import { pickRestoreTools } from "../pg/pgtools.ts";
import { restoreInto } from "../pg/verify.ts";
import { getPitrRequest } from "../restores/pitr.ts";
import { tail } from "../redact.ts";
import { pitrJobSize } from "../restores/pitr.ts";
import { restoreDatabaseToTime, type PitrCopyResult } from "../wal/recover.ts";

const permanent = (message: string) => new WorkerFailure("permanent", message);

/** The backup a restore reads, still whole: completed (or failed verification allowed by the request) and not expired. */
async function sourceBackup(
  deps: Deps,
  projectId: string,
  backupId: string,
): Promise<BackupItem & { row_counts: Record<string, number>; pg_dump_version: string }> {
  const backup = await getBackup(deps, projectId, backupId);
  if (!backup) throw permanent(`The backup ${backupId} no longer exists.`);
  if (backup.state === "expired") throw permanent(`The backup ${backupId} expired and its file was deleted.`);
  if (!backup.row_counts || !backup.pg_dump_version || (backup.state !== "completed" && backup.state !== "failed")) {
    throw permanent(`The backup ${backupId} has no complete file to restore (it is ${backup.state}).`);
  }
  return backup as BackupItem & { row_counts: Record<string, number>; pg_dump_version: string };
}

async function currentPreview(deps: Deps, job: JobItem): Promise<PreviewItem> {
  if (!job.preview_database_id) throw permanent("The job names no preview database.");
  const preview = await getPreview(deps, job.preview_database_id);
  if (!preview) throw permanent("The preview database no longer exists.");
  if (preview.job_id !== job.id) throw permanent(`A later request (${preview.action}) took over preview ${preview.id}; this job was superseded.`);
  return preview;
}

/**
 * `branch.create` (create, clone, reset) and `project.restore`: the role, an empty database it
 * owns, then - when the action has a backup - pg_restore as that role and every table's row count
 * compared with the backup's snapshot. Only then is the preview `ready`; a failure leaves it
 * `failed` with the reason, never `ready` with half the data.
 */
async function provisionAttempt(a: Attempt): Promise<RunOutcome> {
  const { deps, job, o, signal } = a;
  const preview = await currentPreview(deps, job);
  a.onFailure(async ({ retrying, error }) => {
    if (!retrying) await markPreviewFailed(deps, preview, job.id, error);
  });
  const project = await getProject(deps, job.project_id);
  if (!project) throw permanent("The project no longer exists.");
  const cluster = await getClusterConnection(deps, preview.cluster_id);
  const password = previewPassword(deps, preview);
  a.secrets.push(cluster.password, password);
  const backup = preview.action_backup_id ? await sourceBackup(deps, project.id, preview.action_backup_id) : undefined;
  // A point-in-time restore: its target is recorded beside the job.
  const pitr = !backup && preview.action === "restore" ? await getPitrRequest(deps, job.id) : undefined;
  const tools = backup ? await pickRestoreTools(backup.pg_dump_version, deps.pgBinDirs) : undefined;

  await ensurePreviewRole(cluster, preview.role_name, password);
  const asRole = previewConnection(cluster, preview.role_name, password);
  // A restore into an existing preview replaces its data in place (the database, its settings and
  // its name stay; every object the preview's role owns in it is dropped) unless asked to recreate
  // it; everything else (and any retry of an attempt that had begun writing) starts from a new,
  // empty database.
  const fresh = preview.action !== "restore" || preview.action_recreate || preview.action_started;
  if (fresh) await dropPreviewDatabase(cluster, preview.database_name);
  await createPreviewDatabase(cluster, preview.database_name, preview.role_name, project.database_name);
  if (!fresh) await emptyPreviewDatabase(cluster, preview.database_name, preview.role_name);
  if (!(await markActionStarted(deps, preview, job.id))) throw permanent(`A later request took over preview ${preview.id}; this job was superseded.`);

  let report: ToolReport | undefined;
  if (backup && tools) {
    o.hooks?.onRestoreStart?.(job.id);
    const restored = await restoreInto({
      s3: deps.s3,
      bucket: deps.bucket,
      key: backup.backup_key,
      expectedSha256: backup.sha256,
      expectedRowCounts: backup.row_counts,
      conn: asRole,
      database: preview.database_name,
      tools,
      signal,
      what: "restore",
      jobs: o.restoreJobs,
      failed: (message, rep, cause) => new WorkerFailure("permanent", message, { report: rep, cause }),
    });
    report = restored.report;
  }
  let pitrDone: PitrCopyResult | undefined;
  if (pitr) {
    o.hooks?.onRestoreStart?.(job.id);
    pitrDone = await restoreDatabaseToTime({
      deps,
      clusterId: preview.cluster_id,
      cluster,
      database: project.database_name,
      time: new Date(pitr.restore_time),
      restorePointName: pitr.wal_restore_point ?? undefined,
      archiveWaitSeconds: o.pitrArchiveWaitSeconds,
      into: asRole,
      intoDatabase: preview.database_name,
      signal,
      progress: (text) => deps.log.info("point-in-time restore", { job_id: job.id, progress: text }),
    });
    report = {
      ...pitrDone.report,
      stdout: tail(
        `restored ${project.database_name} as of ${pitr.restore_time} from base backup ${pitrDone.baseBackupId}; replay stopped ${pitrDone.stoppedAt ?? "at the target"}\n${pitrDone.report.stdout}`,
        4096,
      ),
    };
  }

  const done = await completeJob(deps, job, toRunReport(report));
  if (!done) return ignored("the claim was lost before completion");
  // If this write is lost, the next delivery of the message (or the reaper's) settles the preview.
  await markPreviewReady(deps, preview, job.id, pitr ? { restore_time: pitr.restore_time } : undefined).catch((err: unknown) =>
    deps.log.warn("job completed but its preview is not marked ready yet", { job_id: job.id, preview_id: preview.id, error: String(err) }),
  );
  deps.log.info(backup || pitr ? "preview restored" : "preview created", {
    job_id: job.id,
    preview_id: preview.id,
    backup_id: backup?.id,
    restore_time: pitr?.restore_time,
    ...pitrDone?.timings,
    tables: backup ? Object.keys(backup.row_counts).length : pitrDone ? Object.keys(pitrDone.rowCounts).length : 0,
  });
  return { status: "completed", ack: true };
}

/** `instance.destroy`: terminate the preview's sessions, drop its database and its role. */
async function deleteAttempt(a: Attempt): Promise<RunOutcome> {
  const { deps, job } = a;
  const preview = await currentPreview(deps, job);
  a.onFailure(async ({ retrying, error }) => {
    if (!retrying) await markPreviewFailed(deps, preview, job.id, `The preview could not be deleted: ${error}`);
  });
  const cluster = await getClusterConnection(deps, preview.cluster_id);
  a.secrets.push(cluster.password, previewPassword(deps, preview));
  await dropPreview(cluster, preview.database_name, preview.role_name);
  const done = await completeJob(deps, job);
  if (!done) return ignored("the claim was lost before completion");
  await markPreviewDeleted(deps, preview, job.id).catch((err: unknown) =>
    deps.log.warn("job completed but its preview is not marked deleted yet", { job_id: job.id, preview_id: preview.id, error: String(err) }),
  );
  deps.log.info("preview deleted", { job_id: job.id, preview_id: preview.id });
  return { status: "completed", ack: true };
}

const settle = (deps: Deps, job: JobItem) => settlePreviewForJob(deps, job);

/** Bytes a restore moves, for the worker-or-task decision (offload.ts): its backup's artifact (0 for an empty preview). */
async function artifactSize(deps: Deps, job: JobItem): Promise<number> {
  const pitr = job.type === "project.restore" ? await pitrJobSize(deps, job) : undefined;
  if (pitr !== undefined) return pitr;
  const preview = job.preview_database_id ? await getPreview(deps, job.preview_database_id) : undefined;
  const backupId = preview?.action_backup_id ?? job.backup_id;
  if (!backupId) return 0;
  return (await getBackup(deps, job.project_id, backupId))?.size_bytes ?? 0;
}

export const previewCreateRunner: JobRunner = { noun: "preview", attempt: provisionAttempt, settle, abandoned: settle, measure: artifactSize };
/** `project.restore` into a preview (core/worker/restore.ts picks it when the job names a preview). */
export const previewRestoreRunner: JobRunner = { noun: "restore", attempt: provisionAttempt, settle, abandoned: settle, measure: artifactSize };
export const previewDeleteRunner: JobRunner = { noun: "preview deletion", attempt: deleteAttempt, settle, abandoned: settle };
