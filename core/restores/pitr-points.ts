import type { Deps } from "../deps.ts";
import { newId } from "../ids.ts";
import { getClusterConnection, type Project } from "../orgs/orgs.ts";
import { createPitrRestorePoint, type RestorePointItem } from "./points.ts";
import { markWalRestorePoint } from "../pg/restore-point.ts";
import { exactTime, parseRestoreTime, resolveRestoreTime } from "./pitr.ts";

/**
 * `POST .../restore-points {kind: "pitr"}`: a labelled moment of the project's WAL archive. Given
 * `pitr_time`, it must lie in the restorable window (or between its end and now: within the
 * archive's lag). Without it, the time is now, and the cluster's WAL is marked with
 * `pg_create_restore_point(<point id>)`, so a restore of the point stops exactly at that record.
 * The point pins its time against the archive's retention until it is deleted.
 */
export async function createPitrPoint(
  deps: Pick<Deps, "ddb" | "table" | "now" | "secretKey" | "log">,
  project: Project,
  body: { label: string; note?: string | null; pitr_time?: string },
  actor: { kind: "api_key" | "clerk_session"; id: string },
): Promise<RestorePointItem> {
  const now = deps.now();
  const requested = body.pitr_time !== undefined ? parseRestoreTime(body.pitr_time, "pitr_time") : now;
  const resolved = await resolveRestoreTime(deps, project, requested, { clamp: false, field: "pitr_time" });
  const id = newId("restorePoint", now);
  let mark: string | null = null;
  if (body.pitr_time === undefined) {
    const conn = await getClusterConnection(deps, project.cluster_id);
    if (await markWalRestorePoint(conn, id)) mark = id;
    else deps.log.warn("could not mark the WAL for a restore point; it restores by its time", { project_id: project.id, restore_point_id: id });
  }
  return createPitrRestorePoint(
    deps,
    project,
    { id, label: body.label, note: body.note, pitrTime: body.pitr_time !== undefined ? resolved.restore_time : exactTime(now), walRestorePoint: mark },
    actor,
  );
}
