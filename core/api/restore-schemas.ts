import { z } from "@hono/zod-openapi";
import { projectSchema } from "../orgs/orgs.ts";
import { DEFAULT_TTL_HOURS, previewModes, previewNameSchema, previewSchema } from "../previews/previews.ts";
import { restorePointSchema } from "../restores/points.ts";

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
    ttl_hours: z.number().int().min(1).max(168).default(DEFAULT_TTL_HOURS).openapi({ description: "Deleted this many hours from now (1-168, default 24)." }),
  })
  .openapi("CreatePreviewRequest");

export const ExtendPreviewRequest = z
  .object({ ttl_hours: z.number().int().min(1).max(168).openapi({ description: "The preview now expires this many hours from now (1-168)." }) })
  .openapi("ExtendPreviewRequest");

const text = (description: string) => z.string().max(2000).optional().openapi({ description });
export const CreateRestoreRequest = z
  .object({
    backup_key: text("Source: a completed backup of this project, by its key."),
    restore_point_id: text("Source: an active restore point."),
    restore_time: text("Source: a point in time (RFC 3339). Refused: no WAL archive is kept."),
    target_kind: z.enum(["new_preview", "preview", "project"]).optional().openapi({ description: "Default new_preview. project: restore over the project's database (approval_token required; refused for production projects)." }),
    preview_id: text("The preview to restore into (target_kind preview)."),
    preview_name: text("Name of the new preview (target_kind new_preview)."),
    ttl_hours: z.number().int().optional().openapi({ description: "Lifetime of the new preview (1-168, default 24)." }),
    recreate: z.boolean().optional().openapi({ description: "Empty the target preview first (else a preview that holds tables is a 409)." }),
    allow_unverified_backup: z.boolean().optional(),
    approval_token: text("Required for target_kind project: an unused project.restore_overwrite approval of this project."),
  })
  .openapi("CreateRestoreRequest");

export const CreateRestorePointRequest = z
  .object({
    label: z.string().min(1).max(200),
    kind: z.enum(["backup", "pitr"]).optional().openapi({ description: "backup (default); pitr is refused (no WAL archive)." }),
    backup_key: z.string().max(300).optional().openapi({ description: "The backup to pin (default: the project's newest verified backup)." }),
    note: z.string().max(2000).nullable().optional(),
  })
  .openapi("CreateRestorePointRequest");
