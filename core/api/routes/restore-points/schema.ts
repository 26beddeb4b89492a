import { z } from "@hono/zod-openapi";
import { createRestorePointInput, restorePointSchema } from "../../../restores/points.ts";
import { at, timestamp } from "../shared.ts";

export const RestorePoint = restorePointSchema
  .extend({ pitr_time: z.string().nullable().openapi(timestamp), created_at: at(), updated_at: at() })
  .openapi("RestorePoint");

export const CreateRestorePointRequest = createRestorePointInput
  .extend({
    kind: createRestorePointInput.shape.kind.meta({ description: "backup (default); pitr is refused (no WAL archive)." }),
    backup_key: createRestorePointInput.shape.backup_key.meta({ description: "The backup to pin (default: the project's newest verified backup)." }),
  })
  .openapi("CreateRestorePointRequest");

export const CreateRestorePointResponse = z.object({ restore_point: RestorePoint });

export const DeleteRestorePointResponse = z.object({ restore_point: RestorePoint });

export const ListRestorePointsResponse = z.object({
  restore_points: z.array(RestorePoint),
  pitr_window_days: z.number().int().openapi({ description: "Always 0: no WAL archive is kept." }),
});
