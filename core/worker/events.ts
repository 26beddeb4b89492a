import { z } from "zod";
import type { BackupItem } from "../backups/backups.ts";
import { keys } from "../db/keys.ts";
import { putItemIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";

/**
 * A stored domain event (pk PRJ#<prj>, sk EVT#<evt>): what happened, kept for a later webhook
 * feature to deliver (`delivered_at` null until then).
 */
export const eventItem = z.object({
  item_type: z.literal("event"),
  id: z.string(),
  type: z.literal("backup.completed"),
  organization_id: z.string(),
  project_id: z.string(),
  occurred_at: z.string(),
  delivered_at: z.string().nullable(),
  data: z.object({
    backup_id: z.string(),
    job_id: z.string(),
    database_name: z.string(),
    label: z.string(),
    backup_key: z.string(),
    size_bytes: z.number(),
    sha256: z.string().nullable(),
    verified_at: z.string().nullable(),
  }),
});
export type EventItem = z.infer<typeof eventItem>;

/** One event per backup: its id reuses the backup's ULID, so a repeated emit is a no-op. */
export const backupCompletedEventId = (backupId: string) => `evt_${backupId.replace(/^bkp_/, "")}`;

/**
 * Records `backup.completed` (after the backup's completion has committed) and logs it as a
 * structured line. Idempotent: the event is written and logged once per backup.
 */
export async function emitBackupCompleted(deps: Pick<Deps, "ddb" | "table" | "now" | "log">, backup: BackupItem): Promise<EventItem | undefined> {
  const event: EventItem = {
    item_type: "event",
    id: backupCompletedEventId(backup.id),
    type: "backup.completed",
    organization_id: backup.organization_id,
    project_id: backup.project_id,
    occurred_at: iso(deps.now()),
    delivered_at: null,
    data: {
      backup_id: backup.id,
      job_id: backup.job_id,
      database_name: backup.database_name,
      label: backup.label,
      backup_key: backup.backup_key,
      size_bytes: backup.size_bytes,
      sha256: backup.sha256,
      verified_at: backup.verified_at,
    },
  };
  if (!(await putItemIf(deps, { ...keys.event(backup.project_id, event.id), ...event }, { condition: "attribute_not_exists(pk)" }))) return undefined;
  // DEBUG: the worker's own "backup completed" line already says it at INFO; this one is the stored event.
  deps.log.debug("backup.completed", { event: "backup.completed", event_id: event.id, ...event.data, project_id: event.project_id, organization_id: event.organization_id });
  return event;
}
