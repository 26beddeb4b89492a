import { z } from "../../../zod.ts";
import { pitrBaseBackupSchema, pitrDrillSchema, pitrSchema } from "../../../wal/view.ts";
import { atOrNull } from "../shared.ts";

export const PitrBaseBackup = pitrBaseBackupSchema
  .extend({ started_at: atOrNull().unwrap(), finished_at: atOrNull(), verified_at: atOrNull() })
  .openapi("PitrBaseBackup");

export const Pitr = pitrSchema
  .extend({
    available: pitrSchema.shape.available.meta({ description: "True when some time can be restored to." }),
    window_days: pitrSchema.shape.window_days.meta({ description: "The cluster's pitr_window_days; 0 where it has no WAL archive." }),
    earliest_restore_time: atOrNull(),
    latest_restore_time: atOrNull(),
    lag_seconds: pitrSchema.shape.lag_seconds.meta({ description: "Now minus latest_restore_time; null when unavailable." }),
    base_backups: z.array(PitrBaseBackup),
    gaps: z
      .array(z.object({ from: atOrNull(), to: atOrNull() }))
      .meta({ description: "Stretches no restore can reach: WAL lost or damaged, until the next base backup." }),
    last_drill: pitrDrillSchema.nullable(),
  })
  .openapi("Pitr");

export const GetPitrResponse = z.object({ pitr: Pitr });
