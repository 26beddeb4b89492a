import { z } from "../zod.ts";
import { Job } from "./jobs.ts";
import { previewNameSchema, ttlHoursSchema } from "./previews.ts";

/** An empty string counts as absent (SPEC 5). */
const optionalText = z.preprocess((v) => (v === "" ? undefined : v), z.string().max(2000).optional());

export const restoreRequest = z.object({
  backup_key: optionalText,
  restore_point_id: optionalText,
  restore_time: optionalText,
  target_kind: z.enum(["new_preview", "preview", "project"]).default("new_preview"),
  preview_id: optionalText,
  preview_name: z.preprocess((v) => (v === "" ? undefined : v), previewNameSchema.optional()),
  ttl_hours: ttlHoursSchema.optional(),
  recreate: z.boolean().default(false),
  allow_unverified_backup: z.boolean().default(false),
  approval_token: optionalText,
});

const field = restoreRequest.shape;
export const CreateRestoreRequest = restoreRequest
  .extend({
    backup_key: field.backup_key.meta({ description: "Source: a completed backup of this project, by its key." }),
    restore_point_id: field.restore_point_id.meta({ description: "Source: an active restore point." }),
    restore_time: field.restore_time.meta({
      description:
        "Source: a point in time (RFC 3339) of the cluster's WAL archive. After the latest restorable time it is moved back to it (the answer's pitr says so); before the window or inside a gap it is a 400 naming the bounds.",
    }),
    target_kind: field.target_kind.meta({
      description: "Default new_preview. project: restore over the project's database (approval_token required; refused for production projects).",
    }),
    preview_id: field.preview_id.meta({ description: "The preview to restore into (target_kind preview)." }),
    preview_name: field.preview_name.meta({ description: "Name of the new preview (target_kind new_preview)." }),
    ttl_hours: field.ttl_hours.meta({ description: "Lifetime of the new preview (1-168, default 24)." }),
    recreate: field.recreate.meta({
      description:
        "How an existing preview's data is replaced (target_kind preview): false (default) drops what it holds inside the database and loads the backup; true drops and recreates the whole database first (its sessions are ended).",
    }),
    approval_token: field.approval_token.meta({
      description: "Required for target_kind project: an unused project.restore_overwrite approval of this project.",
    }),
  })
  .openapi("CreateRestoreRequest");

export const PitrAnswer = z
  .object({
    requested_restore_time: z.string().openapi({ format: "date-time" }),
    restore_time: z.string().openapi({ format: "date-time", description: "The time the job restores to." }),
    restore_time_clamped: z.boolean().openapi({ description: "True when the requested time was after the latest restorable time and was moved back to it." }),
  })
  .openapi("PitrRestore");

export const CreateRestoreResponse = z.object({
  job: Job,
  pitr: PitrAnswer.optional().openapi({ description: "Present for a point-in-time restore (restore_time, or a restore point of kind pitr)." }),
});
