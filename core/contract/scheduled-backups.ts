import { z } from "../zod.ts";
import { at, atOrNull } from "./shared.ts";

/** The ScheduledBackup as the API shows it (SPEC section 1). */
export const scheduledBackupSchema = z.object({
  id: z.string(),
  organization_id: z.string(),
  project_id: z.string(),
  label: z.string(),
  cron_hour: z.number().int().min(0).max(23),
  cron_minute: z.number().int().min(0).max(59),
  is_active: z.boolean(),
  retention_days: z.number().int().min(1).max(365),
  last_run_at: z.string().nullable(),
  last_job_id: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
/** PUT body: the whole schedule (SPEC section 2). 0 or absent retention means the default. */
export const putScheduleInput = z.object({
  cron_hour: z.number().int().min(0).max(23),
  cron_minute: z.number().int().min(0).max(59),
  is_active: z.boolean(),
  label: z.string().min(1).max(200).optional(),
  retention_days: z.number().int().min(0).max(365).optional(),
});
export const ScheduledBackup = scheduledBackupSchema.extend({ last_run_at: atOrNull(), created_at: at(), updated_at: at() }).openapi("ScheduledBackup");

/** Unknown fields are ignored (as most JSON APIs do), so older and newer clients interoperate. */
export const PutScheduledBackupRequest = putScheduleInput.extend({}).openapi("PutScheduledBackupRequest");

export const ListScheduledBackupsResponse = z.object({ scheduled_backups: z.array(ScheduledBackup) });

export const PutScheduledBackupResponse = z.object({ scheduled_backup: ScheduledBackup });
