import { z } from "@hono/zod-openapi";
import { projectSchema } from "../orgs/orgs.ts";
import { DEFAULT_TTL_HOURS, previewModes, previewNameSchema, previewSchema, ttlHoursSchema } from "../previews/previews.ts";
import { createRestorePointInput, restorePointSchema } from "../restores/points.ts";
import { restoreRequest } from "../restores/restores.ts";

/**
 * Wire schemas of the restore half (SPEC section 5): projects, preview databases, restores and
 * restore points, named as OpenAPI components. Kept apart from schemas.ts so that the backup
 * half's components stay as they are.
 */
const timestamp = { type: "string", format: "date-time", example: "2026-11-26T02:15:00Z" } as const;
const at = () => z.string().openapi(timestamp);

export const Project = projectSchema.extend({ created_at: at(), updated_at: at() }).openapi("Project");

export const Preview = previewSchema
  .extend({ expires_at: at(), created_at: at(), updated_at: at() })
  .openapi("Preview");

export const RestorePoint = restorePointSchema
  .extend({ pitr_time: z.string().nullable().openapi(timestamp), created_at: at(), updated_at: at() })
  .openapi("RestorePoint");

export const Connections = z
  .object({
    direct_url: z.string().openapi({ description: "postgres:// URL with the preview role's password" }),
    pooled_url: z.string().nullable().openapi({ description: "null: there is no pooler" }),
    username: z.string(),
  })
  .openapi("Connections");

export const PreviewParams = z.object({
  previewID: z.string().min(1).openapi({ param: { name: "previewID", in: "path" }, description: "Preview database id." }),
});

export const CreatePreviewRequest = z
  .object({
    name: z.string().pipe(previewNameSchema).optional().openapi({ description: "Default: the database name. Letters, digits, '.', '_' or '-' (at most 63)." }),
    mode: z.enum(previewModes).default("empty").openapi({ description: "empty, or clone (restores the project's newest verified backup)." }),
    ttl_hours: ttlHoursSchema.default(DEFAULT_TTL_HOURS).meta({ description: "Deleted this many hours from now (1-168, default 24)." }),
  })
  .openapi("CreatePreviewRequest");

export const ExtendPreviewRequest = z
  .object({ ttl_hours: ttlHoursSchema.meta({ description: "The preview now expires this many hours from now (1-168)." }) })
  .openapi("ExtendPreviewRequest");

const field = restoreRequest.shape;
export const CreateRestoreRequest = restoreRequest
  .extend({
    backup_key: field.backup_key.meta({ description: "Source: a completed backup of this project, by its key." }),
    restore_point_id: field.restore_point_id.meta({ description: "Source: an active restore point." }),
    restore_time: field.restore_time.meta({ description: "Source: a point in time (RFC 3339). Refused: no WAL archive is kept." }),
    target_kind: field.target_kind.meta({ description: "Default new_preview. project: restore over the project's database (approval_token required; refused for production projects)." }),
    preview_id: field.preview_id.meta({ description: "The preview to restore into (target_kind preview)." }),
    preview_name: field.preview_name.meta({ description: "Name of the new preview (target_kind new_preview)." }),
    ttl_hours: field.ttl_hours.meta({ description: "Lifetime of the new preview (1-168, default 24)." }),
    recreate: field.recreate.meta({ description: "Empty the target preview first (else a preview that holds tables is a 409)." }),
    approval_token: field.approval_token.meta({ description: "Required for target_kind project: an unused project.restore_overwrite approval of this project." }),
  })
  .openapi("CreateRestoreRequest");

export const CreateRestorePointRequest = createRestorePointInput
  .extend({
    kind: createRestorePointInput.shape.kind.meta({ description: "backup (default); pitr is refused (no WAL archive)." }),
    backup_key: createRestorePointInput.shape.backup_key.meta({ description: "The backup to pin (default: the project's newest verified backup)." }),
  })
  .openapi("CreateRestorePointRequest");
