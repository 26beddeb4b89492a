import { z } from "../zod.ts";
import { atOrNull } from "./shared.ts";

/** What a customer sees of their cluster's WAL archive (SPEC section 7); core/wal/view.ts computes it. */
export const pitrBaseBackupSchema = z.object({
  id: z.string(),
  started_at: z.string(),
  finished_at: z.string().nullable(),
  size_bytes: z.number().int().nullable(),
  verified_at: z.string().nullable(),
});

export const pitrDrillSchema = z.object({
  at: z.string(),
  restore_time: z.string(),
  ok: z.boolean(),
  seconds: z.number(),
  error: z.string().nullable(),
});

export const pitrSchema = z.object({
  available: z.boolean(),
  window_days: z.number().int(),
  earliest_restore_time: z.string().nullable(),
  latest_restore_time: z.string().nullable(),
  lag_seconds: z.number().int().nullable(),
  base_backups: z.array(pitrBaseBackupSchema),
  gaps: z.array(z.object({ from: z.string().nullable(), to: z.string().nullable() })),
  last_drill: pitrDrillSchema.nullable(),
});
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
