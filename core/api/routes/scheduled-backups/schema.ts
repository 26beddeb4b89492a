import { z } from "../../../zod.ts";
import { putScheduleInput, scheduledBackupSchema } from "../../../backups/schedules.ts";
import { at, atOrNull } from "../shared.ts";

export const ScheduledBackup = scheduledBackupSchema.extend({ last_run_at: atOrNull(), created_at: at(), updated_at: at() }).openapi("ScheduledBackup");

/** Unknown fields are ignored (as most JSON APIs do), so older and newer clients interoperate. */
export const PutScheduledBackupRequest = putScheduleInput.extend({}).openapi("PutScheduledBackupRequest");

export const ListScheduledBackupsResponse = z.object({ scheduled_backups: z.array(ScheduledBackup) });

export const PutScheduledBackupResponse = z.object({ scheduled_backup: ScheduledBackup });
