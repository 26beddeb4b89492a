import { z } from "../zod.ts";
import { at, atOrNull } from "./shared.ts";

/** The RestorePoint as the API shows it (SPEC section 5): exactly these fields. */
export const restorePointSchema = z.object({
  id: z.string(),
  organization_id: z.string(),
  project_id: z.string(),
  kind: z.enum(["backup", "pitr"]),
  label: z.string(),
  note: z.string().nullable(),
  backup_id: z.string().nullable(),
  backup_key: z.string().nullable(),
  pitr_time: z.string().nullable(),
  state: z.enum(["active", "deleted"]),
  created_by_actor_kind: z.enum(["api_key", "clerk_session"]),
  created_by_actor_id: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export const createRestorePointInput = z.object({
  label: z.string().min(1).max(200),
  kind: z.enum(["backup", "pitr"]).default("backup"),
  backup_key: z.string().max(300).optional(),
  /** Kind pitr: the moment (RFC 3339); default now. An empty string counts as absent. */
  pitr_time: z.preprocess((v) => (v === "" || v === null ? undefined : v), z.string().max(100).optional()),
  note: z.string().max(2000).nullable().optional(),
});

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
