import { z } from "../../../zod.ts";
import { createRestorePointInput, restorePointSchema } from "../../../restores/points.ts";
import { at, atOrNull } from "../shared.ts";

export const RestorePoint = restorePointSchema.extend({ pitr_time: atOrNull(), created_at: at(), updated_at: at() }).openapi("RestorePoint");

export const CreateRestorePointRequest = createRestorePointInput
  .extend({
    kind: createRestorePointInput.shape.kind.meta({
      description: "backup (default): pins a backup; pitr: a moment of the WAL archive (pitr_time), kept past the window until the point is deleted.",
    }),
    pitr_time: createRestorePointInput.shape.pitr_time.meta({
      description:
        "Kind pitr: the moment (RFC 3339, inside the restorable window); default now, which also marks the WAL with pg_create_restore_point(<the point's id>).",
    }),
    backup_key: createRestorePointInput.shape.backup_key.meta({ description: "The backup to pin (default: the project's newest verified backup)." }),
  })
  .openapi("CreateRestorePointRequest");

export const CreateRestorePointResponse = z.object({ restore_point: RestorePoint });

export const DeleteRestorePointResponse = z.object({ restore_point: RestorePoint });

export const ListRestorePointsResponse = z.object({
  restore_points: z.array(RestorePoint),
  pitr_window_days: z
    .number()
    .int()
    .openapi({ description: "Days of point-in-time recovery the project's cluster keeps (its WAL archive's window); 0 where it has no archive." }),
});
