import type { z } from "../zod.ts";
import { restoreRequest } from "../contract/restores.ts";
import { getBackup, type BackupItem } from "../backups/backups.ts";
import { queryAll } from "../db/store.ts";
import { keys } from "../db/keys.ts";
import { backupItem } from "../backups/backups.ts";
import type { Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import type { JobItem } from "../jobs/jobs.ts";
import type { Project } from "../orgs/orgs.ts";
import { createPreview, getPreview, requestRestoreIntoPreview } from "../previews/previews.ts";
import { refuseOverwriteOfProduction, requestRestoreOverwrite } from "../promote/promote.ts";
import type { Actor } from "../audit/audit.ts";
import { getRestorePoint } from "./points.ts";
import { parseRestoreTime, pitrRequestPut, resolveRestoreTime, type PitrTarget, type ResolvedRestoreTime } from "./pitr.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

export type RestoreRequest = z.input<typeof restoreRequest>;

export const PITR_UNAVAILABLE =
  "point-in-time recovery is not available for this project: the service keeps logical backups only (no WAL archive); restore a backup (backup_key) or a restore point of kind backup";

/** `projects/<prj>/backups/<bkp>.dump` -> the ids; undefined for anything else. */
export function parseBackupKey(key: string): { projectId: string; backupId: string } | undefined {
  const m = /^projects\/(prj_[0-9a-z]{26})\/backups\/(bkp_[0-9a-z]{26})\.dump$/.exec(key);
  return m ? { projectId: m[1]!, backupId: m[2]! } : undefined;
}

/**
 * The backup a restore (or a clone) may read: this project's, completed, not expired, and verified
 * unless the caller accepts an unverified one. Every refusal says which rule it is.
 */
export function checkRestorable(backup: BackupItem, allowUnverified: boolean): void {
  if (backup.state === "expired") throw new AppError("bad_request", `backup ${backup.id} expired: its file was deleted by retention, so it cannot be restored`);
  if (backup.state === "failed") {
    throw new AppError("bad_request", `backup ${backup.id} failed${backup.verification_error ? ` (${backup.verification_error})` : ""}: it cannot be restored`);
  }
  if (backup.state !== "completed") throw new AppError("conflict", `backup ${backup.id} is ${backup.state}: wait until it completes`);
  if (backup.verification_state !== "verified" && !allowUnverified) {
    throw new AppError(
      "bad_request",
      `backup ${backup.id} is not verified (verification ${backup.verification_state}): pass allow_unverified_backup: true to restore it anyway`,
    );
  }
}

/** Finds a backup of this project by its key; another project's (or organization's) key is a 404. */
export async function backupByKey(deps: Db, project: Project, backupKey: string): Promise<BackupItem> {
  const ids = parseBackupKey(backupKey);
  const notFound = () => new AppError("not_found", `backup ${backupKey} not found in project ${project.id}`);
  if (!ids || ids.projectId !== project.id) throw notFound();
  const backup = await getBackup(deps, project.id, ids.backupId);
  if (!backup) throw notFound();
  return backup;
}

/** The project's newest completed and verified backup (what a clone restores). */
export async function newestVerifiedBackup(deps: Db, project: Project): Promise<BackupItem> {
  const [b] = await queryAll(
    deps,
    backupItem,
    {
      KeyConditionExpression: "pk = :p AND begins_with(sk, :b)",
      FilterExpression: "#state = :completed AND verification_state = :verified",
      ExpressionAttributeNames: { "#state": "state" },
      ExpressionAttributeValues: { ":p": keys.project(project.id).pk, ":b": keys.backupPrefix, ":completed": "completed", ":verified": "verified" },
      ScanIndexForward: false,
    },
    1,
  );
  if (!b)
    throw new AppError(
      "conflict",
      `project ${project.id} has no completed, verified backup to clone: take one first (POST /v1/projects/${project.id}/backups)`,
    );
  return b;
}

type Writer = Db & Pick<Deps, "sqs" | "queueUrl" | "log" | "secretKey" | "previewLimit">;

/**
 * Validates a restore request against SPEC 5's rules and starts its `project.restore` job: into a
 * new preview (created `provisioning` with the job), into an existing preview of the project
 * (replacing what it holds), or over the project's database (approval required).
 */
export async function requestRestore(
  deps: Writer,
  project: Project,
  input: RestoreRequest,
  /** Who asked (an overwrite restore records it and consumes the approval for it). */
  actor?: Actor,
): Promise<{ job: JobItem; pitr?: ResolvedRestoreTime }> {
  const data = restoreRequest.parse(input);
  const sources = [data.backup_key, data.restore_point_id, data.restore_time].filter((s) => s !== undefined);
  if (sources.length === 0) throw new AppError("bad_request", "give exactly one source: backup_key, restore_point_id or restore_time");
  if (sources.length > 1) throw new AppError("bad_request", "give exactly one source: backup_key, restore_point_id or restore_time (not several)");
  if (data.target_kind === "project") {
    if (data.preview_id !== undefined || data.preview_name !== undefined) {
      throw new AppError("bad_request", "preview_id and preview_name are for a preview target; target_kind project restores into the project's own database");
    }
    refuseOverwriteOfProduction(project);
  }

  // The source: a backup, or a point in time of the cluster's WAL archive (a time, or a point of kind pitr).
  let backup: BackupItem | undefined;
  let pitr: PitrTarget | undefined;
  if (data.restore_time !== undefined) {
    pitr = { ...(await resolveRestoreTime(deps, project, parseRestoreTime(data.restore_time))), restore_point_id: null, wal_restore_point: null };
  } else if (data.backup_key !== undefined) {
    backup = await backupByKey(deps, project, data.backup_key);
  } else {
    const point = await getRestorePoint(deps, project.id, data.restore_point_id!);
    if (!point) throw new AppError("not_found", `restore point ${data.restore_point_id} not found in project ${project.id}`);
    if (point.state !== "active") throw new AppError("bad_request", `restore point ${point.id} was deleted: it no longer pins a backup`);
    if (point.kind === "pitr") {
      if (!point.pitr_time) throw new AppError("bad_request", `restore point ${point.id} has no pitr_time`);
      const resolved = await resolveRestoreTime(deps, project, new Date(point.pitr_time), { clamp: false, field: `restore point ${point.id}'s pitr_time` });
      pitr = { ...resolved, restore_point_id: point.id, wal_restore_point: point.wal_restore_point };
    } else {
      if (!point.backup_id) throw new AppError("bad_request", `restore point ${point.id} names no backup`);
      const b = await getBackup(deps, project.id, point.backup_id);
      if (!b) throw new AppError("not_found", `the backup of restore point ${point.id} no longer exists`);
      backup = b;
    }
  }
  if (backup) checkRestorable(backup, data.allow_unverified_backup);
  const also = pitr ? (jobId: string) => [pitrRequestPut(deps, project, jobId, pitr)] : undefined;
  // What the preview reports as its source (source_kind pitr, source_restore_time).
  const source = pitr ? { kind: "pitr" as const, restore_time: pitr.restore_time } : undefined;
  const answer = pitr
    ? { requested_restore_time: pitr.requested_restore_time, restore_time: pitr.restore_time, restore_time_clamped: pitr.restore_time_clamped }
    : undefined;

  if (data.target_kind === "project") {
    if (!actor) throw new Error("an overwrite restore needs the requesting actor");
    const { job } = await requestRestoreOverwrite(
      deps,
      project,
      backup ?? null,
      data.approval_token,
      actor,
      pitr && also ? { restore_time: pitr.restore_time, also } : undefined,
    );
    return { job, pitr: answer };
  }

  if (data.target_kind === "new_preview") {
    if (data.preview_id !== undefined) throw new AppError("bad_request", "preview_id is for target_kind preview; a new preview gets its own id");
    const { job } = await createPreview(deps, project, {
      name: data.preview_name,
      mode: "clone",
      ttl_hours: data.ttl_hours,
      backupId: backup?.id ?? null,
      jobType: "project.restore",
      also,
      source,
    });
    return { job, pitr: answer };
  }
  if (data.preview_id === undefined) throw new AppError("bad_request", "preview_id: is required when target_kind is preview");
  const preview = await getPreview(deps, data.preview_id);
  if (!preview || preview.project_id !== project.id || preview.state === "deleted") {
    throw new AppError("not_found", `preview ${data.preview_id} not found in project ${project.id}`);
  }
  // Naming an existing preview (target_kind preview + its id) is the request to replace its data,
  // as CapyDB's clients document: what it holds is dropped before the data is loaded (`recreate`:
  // the whole database is dropped and created again). Never the default target: a restore without
  // target_kind makes a new preview, and the project's own database needs an approval.
  const { job } = await requestRestoreIntoPreview(deps, project, preview, backup?.id ?? null, data.recreate, also, source);
  return { job, pitr: answer };
}
