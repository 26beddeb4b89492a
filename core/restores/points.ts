import { z } from "../zod.ts";
import { restorePointSchema } from "../contract/restore-points.ts";
import { backupItem, type BackupItem } from "../backups/backups.ts";
import { keys } from "../db/keys.ts";
import { getItem, queryAll, transactWrite } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { newId } from "../ids.ts";
import type { Project } from "../orgs/orgs.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

export type RestorePoint = z.infer<typeof restorePointSchema>;

export const restorePointItem = restorePointSchema.extend({
  item_type: z.literal("restore_point"),
  /** Kind pitr: the name marked in the WAL with pg_create_restore_point (the point's id), when it was. */
  wal_restore_point: z.string().nullable().default(null),
  /** Kind pitr: the cluster whose archive the point pins (its pin item lives there). */
  pin_cluster_id: z.string().nullable().default(null),
});
export type RestorePointItem = z.infer<typeof restorePointItem>;

export const toRestorePoint = (p: RestorePointItem): RestorePoint => restorePointSchema.parse(p);

export async function getRestorePoint(deps: Db, projectId: string, id: string): Promise<RestorePointItem | undefined> {
  if (!/^rpt_[0-9a-z]{26}$/.test(id)) return undefined;
  return getItem(deps, restorePointItem, keys.restorePoint(projectId, id));
}

/** Newest first, deleted ones included (their state says so). */
export async function listRestorePoints(deps: Db, projectId: string): Promise<RestorePointItem[]> {
  return queryAll(deps, restorePointItem, {
    KeyConditionExpression: "pk = :p AND begins_with(sk, :r)",
    ExpressionAttributeValues: { ":p": keys.project(projectId).pk, ":r": keys.restorePointPrefix },
    ScanIndexForward: false,
  });
}

/** The stored backup plus the number of active restore points pinning it. */
const pinnedBackup = backupItem.extend({ pin_count: z.number().int().optional() });

/**
 * The expiry-index attributes of a backup with `pins` active points: a pinned backup leaves the
 * index the retention sweep reads (so it is never expired while pinned); the last unpin puts it
 * back with its own `expires_at`, so a backup past due expires at the next sweep.
 */
function pinUpdate(backup: BackupItem, pinsBefore: number, delta: 1 | -1) {
  const pins = pinsBefore + delta;
  const inIndex = pins === 0 && (backup.state === "completed" || backup.state === "failed");
  return {
    TableName: "",
    Key: keys.backup(backup.project_id, backup.id),
    UpdateExpression: inIndex
      ? "SET pin_count = :pins, gsi2pk = :p, gsi2sk = :sk"
      : pins === 0
        ? "SET pin_count = :pins REMOVE gsi2pk, gsi2sk"
        : "SET pin_count = :pins REMOVE gsi2pk, gsi2sk",
    // Optimistic: the count read is the count written over, so concurrent pins retry instead of losing one.
    ConditionExpression:
      pinsBefore === 0 ? "(attribute_not_exists(pin_count) OR pin_count = :zero) AND #state = :state" : "pin_count = :before AND #state = :state",
    ExpressionAttributeNames: { "#state": "state" },
    ExpressionAttributeValues: {
      ":pins": pins,
      ...(pinsBefore === 0 ? { ":zero": 0 } : { ":before": pinsBefore }),
      ":state": backup.state,
      ...(inIndex ? { ":p": keys.backupExpiryIndex, ":sk": `${backup.expires_at}#${backup.id}` } : {}),
    },
  };
}

/**
 * What keeps a cluster's WAL archive past its window: one item per active restore point of kind
 * pitr, in the cluster's partition (`CLS#<cls>` / `PITRPIN#<rpt>`), so the archive's retention
 * reads every pin of a cluster with one query (`listPitrPins`).
 */
export const pitrPinItem = z.object({
  item_type: z.literal("pitr_pin"),
  cluster_id: z.string(),
  project_id: z.string(),
  restore_point_id: z.string(),
  pitr_time: z.string(),
  created_at: z.string(),
});
export type PitrPinItem = z.infer<typeof pitrPinItem>;

/** The active pitr restore points of a cluster: retention keeps the base backup and WAL each one needs. */
export async function listPitrPins(deps: Db, clusterId: string): Promise<PitrPinItem[]> {
  return queryAll(deps, pitrPinItem, {
    KeyConditionExpression: "pk = :p AND begins_with(sk, :r)",
    ExpressionAttributeValues: { ":p": keys.pitrPin(clusterId, "").pk, ":r": keys.pitrPinPrefix },
  });
}

/**
 * An active point of kind pitr at `pitrTime` (checked against the window by the caller), with its
 * pin on the cluster's archive. `walRestorePoint`: the name marked in the WAL for it, if any.
 */
export async function createPitrRestorePoint(
  deps: Db,
  project: Project,
  input: { id: string; label: string; note?: string | null; pitrTime: string; walRestorePoint: string | null },
  actor: { kind: "api_key" | "clerk_session"; id: string },
): Promise<RestorePointItem> {
  const at = iso(deps.now());
  const point: RestorePointItem = {
    item_type: "restore_point",
    id: input.id,
    organization_id: project.organization_id,
    project_id: project.id,
    kind: "pitr",
    label: input.label,
    note: input.note ?? null,
    backup_id: null,
    backup_key: null,
    pitr_time: input.pitrTime,
    state: "active",
    created_by_actor_kind: actor.kind,
    created_by_actor_id: actor.id,
    created_at: at,
    updated_at: at,
    wal_restore_point: input.walRestorePoint,
    pin_cluster_id: project.cluster_id,
  };
  const pin: PitrPinItem = {
    item_type: "pitr_pin",
    cluster_id: project.cluster_id,
    project_id: project.id,
    restore_point_id: point.id,
    pitr_time: input.pitrTime,
    created_at: at,
  };
  await transactWrite(deps, [
    { Put: { TableName: deps.table, Item: { ...keys.restorePoint(project.id, point.id), ...point }, ConditionExpression: "attribute_not_exists(pk)" } },
    { Put: { TableName: deps.table, Item: { ...keys.pitrPin(project.cluster_id, point.id), ...pin } } },
  ]);
  return point;
}

/** Up to three tries when a concurrent pin or unpin changed the backup's count. */
async function withPinRetry<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i < 2 && err instanceof AppError && err.code === "conflict" && err.message === PIN_RACE) continue;
      throw err;
    }
  }
}
const PIN_RACE = "the backup changed while it was being pinned; try again";

/** Creates an active point on a completed backup of the project and pins the backup. */
export async function createRestorePoint(
  deps: Db,
  project: Project,
  backup: BackupItem,
  input: { label: string; note?: string | null },
  actor: { kind: "api_key" | "clerk_session"; id: string },
): Promise<RestorePointItem> {
  const now = deps.now();
  const point: RestorePointItem = {
    item_type: "restore_point",
    id: newId("restorePoint", now),
    organization_id: project.organization_id,
    project_id: project.id,
    kind: "backup",
    label: input.label,
    note: input.note ?? null,
    backup_id: backup.id,
    backup_key: backup.backup_key,
    pitr_time: null,
    state: "active",
    created_by_actor_kind: actor.kind,
    created_by_actor_id: actor.id,
    created_at: iso(now),
    updated_at: iso(now),
    wal_restore_point: null,
    pin_cluster_id: null,
  };
  await withPinRetry(async () => {
    const current = await getItem(deps, pinnedBackup, keys.backup(project.id, backup.id));
    if (current?.state !== "completed")
      throw new AppError("bad_request", `backup ${backup.id} is ${current?.state ?? "gone"}: only a completed backup can be pinned by a restore point`);
    await transactWrite(
      deps,
      [
        { Put: { TableName: deps.table, Item: { ...keys.restorePoint(project.id, point.id), ...point }, ConditionExpression: "attribute_not_exists(pk)" } },
        { Update: { ...pinUpdate(current, current.pin_count ?? 0, 1), TableName: deps.table } },
      ],
      PIN_RACE,
    );
  });
  return point;
}

/** Marks the point deleted and unpins its backup (back to normal retention). */
export async function deleteRestorePoint(deps: Db, point: RestorePointItem): Promise<RestorePointItem> {
  if (point.state === "deleted") return point;
  const at = iso(deps.now());
  await withPinRetry(async () => {
    const writes: Parameters<typeof transactWrite>[1] = [
      {
        Update: {
          TableName: deps.table,
          Key: keys.restorePoint(point.project_id, point.id),
          UpdateExpression: "SET #state = :deleted, updated_at = :at",
          ConditionExpression: "#state = :active",
          ExpressionAttributeNames: { "#state": "state" },
          ExpressionAttributeValues: { ":deleted": "deleted", ":active": "active", ":at": at },
        },
      },
    ];
    const backup = point.backup_id ? await getItem(deps, pinnedBackup, keys.backup(point.project_id, point.backup_id)) : undefined;
    if (backup && (backup.pin_count ?? 0) > 0) writes.push({ Update: { ...pinUpdate(backup, backup.pin_count ?? 0, -1), TableName: deps.table } });
    // A pitr point's pin goes with it: the archive's retention may then let its time go.
    if (point.pin_cluster_id) writes.push({ Delete: { TableName: deps.table, Key: keys.pitrPin(point.pin_cluster_id, point.id) } });
    await transactWrite(deps, writes, PIN_RACE);
  });
  return { ...point, state: "deleted", updated_at: at };
}
