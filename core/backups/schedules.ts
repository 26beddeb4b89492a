import { z } from "../zod.ts";
import { putScheduleInput, scheduledBackupSchema } from "../contract/scheduled-backups.ts";
import { auditItem, type Actor } from "../audit/audit.ts";
import { keys } from "../db/keys.ts";
import { getItem, setFields, transactWriteIf, updateItemIf } from "../db/store.ts";
import { AppError } from "../errors.ts";
import { iso, type Deps } from "../deps.ts";
import { newId } from "../ids.ts";
import type { Project } from "../orgs/orgs.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

export const DEFAULT_SCHEDULE_NAME = "default";
export const DEFAULT_SCHEDULE_RETENTION_DAYS = 14;

export type ScheduledBackup = z.infer<typeof scheduledBackupSchema>;

export const scheduleItem = scheduledBackupSchema.extend({ item_type: z.literal("schedule") });
export type ScheduleItem = z.infer<typeof scheduleItem>;

export const toScheduledBackup = (item: ScheduleItem): ScheduledBackup => scheduledBackupSchema.parse(item);

export type PutScheduleInput = z.infer<typeof putScheduleInput>;

/** `HH:MM`, the schedule's minute of the UTC day (the dispatcher's index key). */
export const minuteOfDay = (hour: number, minute: number) => `${String(hour).padStart(2, "0")}:${String(minute).padStart(2, "0")}`;

/** Index attributes: only active schedules are in the dispatcher's sparse index. */
export function scheduleIndex(s: Pick<ScheduleItem, "is_active" | "cron_hour" | "cron_minute" | "id">): Record<string, string | undefined> {
  return s.is_active ? { gsi2pk: keys.scheduleIndex, gsi2sk: `${minuteOfDay(s.cron_hour, s.cron_minute)}#${s.id}` } : { gsi2pk: undefined, gsi2sk: undefined };
}

export async function getSchedule(deps: Db, projectId: string): Promise<ScheduleItem | undefined> {
  return getItem(deps, scheduleItem, keys.schedule(projectId));
}

/**
 * Replaces the project's schedule with `input` (no merge). Keeps id, created_at and the run
 * history (`last_run_at`, `last_job_id`) of an existing schedule: the write sets only the user's
 * fields, so a dispatcher tick that records a run at the same moment is never overwritten. It is
 * conditioned on the schedule it read (its id, or its absence), which the audit's `before` shows;
 * a concurrent PUT that changed that is read again and the write redone.
 */
export async function putSchedule(deps: Db, project: Project, input: PutScheduleInput, actor?: Actor): Promise<ScheduleItem> {
  const data = putScheduleInput.parse(input);
  for (let attempt = 1; ; attempt++) {
    const now = deps.now();
    const existing = await getSchedule(deps, project.id);
    const id = existing?.id ?? newId("schedule", now);
    const settingsOf = { cron_hour: data.cron_hour, cron_minute: data.cron_minute, is_active: data.is_active };
    const userFields = {
      item_type: "schedule",
      organization_id: project.organization_id,
      project_id: project.id,
      label: data.label ?? DEFAULT_SCHEDULE_NAME,
      ...settingsOf,
      retention_days: data.retention_days || DEFAULT_SCHEDULE_RETENTION_DAYS,
      updated_at: iso(now),
      ...scheduleIndex({ ...settingsOf, id }),
    };
    const set = setFields(userFields);
    const update = {
      TableName: deps.table,
      Key: keys.schedule(project.id),
      // The dispatcher's fields (last_run_at, last_job_id, a set-aside retry) are never written here.
      UpdateExpression: set.UpdateExpression!.replace(
        /^SET /,
        "SET id = if_not_exists(id, :id), created_at = if_not_exists(created_at, :created), last_run_at = if_not_exists(last_run_at, :none), last_job_id = if_not_exists(last_job_id, :none), ",
      ),
      ConditionExpression: existing ? "attribute_exists(pk) AND id = :id" : "attribute_not_exists(pk)",
      ExpressionAttributeNames: set.ExpressionAttributeNames,
      ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":id": id, ":created": iso(now), ":none": null },
    };
    const settings = (s: Pick<ScheduleItem, "cron_hour" | "cron_minute" | "is_active" | "retention_days" | "label"> | undefined) =>
      s ? { cron_hour: s.cron_hour, cron_minute: s.cron_minute, is_active: s.is_active, retention_days: s.retention_days, label: s.label } : null;
    const written = actor
      ? await transactWriteIf(deps, [
          { Update: update },
          auditItem(deps, {
            organization_id: project.organization_id,
            project_id: project.id,
            action: "scheduled_backup.updated",
            actor,
            target_type: "scheduled_backup",
            target_id: id,
            metadata: { scheduled_backup_id: id, before: settings(existing), after: settings(userFields) },
          }),
        ])
      : (await updateItemIf(deps, z.unknown(), update)) !== undefined;
    if (written) {
      const item = await getSchedule(deps, project.id);
      if (item) return item;
    }
    if (attempt >= 3) throw new AppError("conflict", "the schedule is being changed by another request; retry");
  }
}
