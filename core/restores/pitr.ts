import { z } from "../zod.ts";
import { keys } from "../db/keys.ts";
import { getItem } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import type { Project } from "../orgs/orgs.ts";
import type { JobItem } from "../jobs/jobs.ts";
import { hasServerBinary } from "../pg/recovery.ts";
import { listBaseBackups, restorableWindow } from "../wal/archive.ts";
import { baseBackupForTime, locateTime } from "../wal/window.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

/**
 * The rules of a point-in-time restore's time (SPEC 5 and 7): a time after the latest
 * restorable one is moved back to it (and says so); a time before the window, inside a gap, or
 * on a cluster without an archive is refused with the bounds a person needs to choose another.
 */

/** RFC 3339 with a zone (`2026-12-06T14:31:00Z`, `...+02:00`), fractions allowed. */
const rfc3339 = z.iso.datetime({ offset: true });

export const PITR_NO_ARCHIVE =
  "point-in-time recovery is not available for this project: its cluster has no WAL archive; restore a backup (backup_key) or a restore point of kind backup";

/** What the API answers beside the job (`pitr`), and what the job restores to. */
export interface ResolvedRestoreTime {
  requested_restore_time: string;
  restore_time: string;
  restore_time_clamped: boolean;
}

/** RFC 3339 UTC, milliseconds kept when there are any (a restore time is exact to the commit). */
export const exactTime = (d: Date): string => d.toISOString().replace(/\.000Z$/, "Z");

export function parseRestoreTime(text: string, field = "restore_time"): Date {
  if (!rfc3339.safeParse(text).success) {
    throw new AppError(
      "bad_request",
      `${field}: must be an RFC 3339 time with a zone, such as 2026-12-06T14:31:00Z (got ${JSON.stringify(text.slice(0, 60))})`,
    );
  }
  return new Date(text);
}

/**
 * Checks `requested` against the project's cluster's window now. `clamp: false` (a restore
 * point's time) does not move a time after the latest restorable one: a time up to now is taken
 * as it is (the archive reaches it within its lag; the restore waits for that), a later one is
 * refused.
 */
export async function resolveRestoreTime(
  deps: Db,
  project: Project,
  requested: Date,
  opts: { clamp?: boolean; field?: string } = {},
): Promise<ResolvedRestoreTime> {
  const field = opts.field ?? "restore_time";
  const window = await restorableWindow(deps, project.cluster_id);
  if (!window.archive?.enabled && !window.available) throw new AppError("bad_request", PITR_NO_ARCHIVE);
  if (!window.available) {
    throw new AppError(
      "bad_request",
      `${field}: no time is restorable yet for this project: its cluster's WAL archive has no verified base backup (the first one is taken within minutes of archiving starting; see GET /v1/projects/${project.id}/pitr)`,
    );
  }
  const bounds = `the restorable window is ${window.earliest_restore_time} to ${window.latest_restore_time}`;
  const latest = new Date(window.latest_restore_time!);
  let target = requested;
  let clamped = false;
  if (requested.getTime() > latest.getTime()) {
    if (opts.clamp === false) {
      if (requested.getTime() > deps.now().getTime()) throw new AppError("bad_request", `${field}: ${exactTime(requested)} is in the future (${bounds})`);
      return { requested_restore_time: exactTime(requested), restore_time: exactTime(requested), restore_time_clamped: false };
    }
    target = latest;
    clamped = true;
  }
  const where = locateTime(window, target);
  if (where.in === "before")
    throw new AppError("bad_request", `${field}: ${exactTime(requested)} is before the earliest restorable time (${bounds}, ${window.window_days} days kept)`);
  if (where.in === "gap") {
    throw new AppError(
      "bad_request",
      `${field}: ${exactTime(requested)} falls in a gap of the WAL archive, from ${where.gap.from ?? "unknown"} to ${where.gap.to ?? "the next base backup"}, which cannot be restored; ${bounds}`,
    );
  }
  if (where.in !== "span" || !baseBackupForTime(window, window.baseBackups, target)) {
    throw new AppError("bad_request", `${field}: ${exactTime(requested)} cannot be restored (${bounds})`);
  }
  return {
    requested_restore_time: exactTime(requested),
    restore_time: clamped ? window.latest_restore_time! : exactTime(target),
    restore_time_clamped: clamped,
  };
}

/**
 * The target of a point-in-time restore job, beside the job (`JOB#<job>` / `PITR`), written in the
 * same transaction: the worker reads it to know it restores from the archive, and to what.
 */
export const pitrRequestItem = z.object({
  item_type: z.literal("pitr_request"),
  job_id: z.string(),
  project_id: z.string(),
  cluster_id: z.string(),
  requested_restore_time: z.string(),
  restore_time: z.string(),
  restore_time_clamped: z.boolean(),
  /** Restoring a restore point of kind pitr: its id, and the name it marked in the WAL (replay stops exactly there). */
  restore_point_id: z.string().nullable(),
  wal_restore_point: z.string().nullable(),
  created_at: z.string(),
});
export type PitrRequestItem = z.infer<typeof pitrRequestItem>;

export interface PitrTarget extends ResolvedRestoreTime {
  restore_point_id: string | null;
  wal_restore_point: string | null;
}

/** The Put of a job's pitr request, for the transaction that creates the job. */
export function pitrRequestPut(deps: Pick<Deps, "table" | "now">, project: Project, jobId: string, t: PitrTarget) {
  const item: PitrRequestItem = {
    item_type: "pitr_request",
    job_id: jobId,
    project_id: project.id,
    cluster_id: project.cluster_id,
    requested_restore_time: t.requested_restore_time,
    restore_time: t.restore_time,
    restore_time_clamped: t.restore_time_clamped,
    restore_point_id: t.restore_point_id,
    wal_restore_point: t.wal_restore_point,
    created_at: iso(deps.now()),
  };
  return { Put: { TableName: deps.table, Item: { ...keys.pitrRequest(jobId), ...item }, ConditionExpression: "attribute_not_exists(pk)" } };
}

export async function getPitrRequest(deps: Db, jobId: string): Promise<PitrRequestItem | undefined> {
  return getItem(deps, pitrRequestItem, keys.pitrRequest(jobId));
}

/**
 * Bytes a point-in-time restore job moves, for the worker-or-task decision (offload.ts): its base
 * backup's tar. Where no PostgreSQL server binary is installed (a Lambda), more than any
 * threshold: the restore then always runs as the task, whose image has one. Undefined for a job
 * that is not a point-in-time restore.
 */
export async function pitrJobSize(deps: Deps, job: JobItem): Promise<number | undefined> {
  const req = await getPitrRequest(deps, job.id);
  if (!req) return undefined;
  if (!hasServerBinary(deps.pgBinDirs)) return Number.MAX_SAFE_INTEGER;
  const window = await restorableWindow(deps, req.cluster_id);
  const base = baseBackupForTime(window, window.baseBackups, new Date(req.restore_time)) ?? (await listBaseBackups(deps, req.cluster_id))[0];
  return base?.raw_bytes ?? base?.size_bytes ?? 0;
}
