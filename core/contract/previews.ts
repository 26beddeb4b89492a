import { z } from "../zod.ts";
import { Job } from "./jobs.ts";
import { at, atOrNull, listQuery } from "./shared.ts";

export const previewStates = ["provisioning", "ready", "resetting", "deleting", "deleted", "failed"] as const;
export const previewModes = ["empty", "clone"] as const;
export const previewSourceKinds = ["empty", "backup", "pitr"] as const;

/** The Preview as the API shows it (SPEC section 5, the names CapyDB's clients read): exactly these fields. */
export const previewSchema = z.object({
  id: z.string(),
  organization_id: z.string(),
  project_id: z.string(),
  name: z.string(),
  mode: z.enum(previewModes),
  state: z.enum(previewStates),
  database_name: z.string(),
  /** The login role that owns the database (the same name as the database). */
  role_name: z.string(),
  direct_port: z.number().int(),
  /** The pooler's port; the direct port when the cluster has no pooler. */
  pooled_port: z.number().int(),
  public_host: z.string(),
  ssl_mode: z.string().nullable(),
  /** Where its data came from: nothing, a backup, or a point in time of the project's WAL archive. */
  source_kind: z.enum(previewSourceKinds),
  source_backup_key: z.string().nullable(),
  /** The project database the data was taken from (null for an empty preview). */
  source_database: z.string().nullable(),
  /** The moment restored (source_kind pitr). */
  source_restore_time: z.string().nullable(),
  last_error: z.string().nullable(),
  ttl_expires_at: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export const DEFAULT_TTL_HOURS = 24;

export const previewNameSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "use letters, digits, '.', '_' or '-' (at most 63)");
export const ttlHoursSchema = z.number().int().min(1).max(168);

/** Wire schemas of the preview databases (SPEC section 5), named as OpenAPI components. */
export const Preview = previewSchema
  .extend({
    source_restore_time: atOrNull(),
    ttl_expires_at: at().openapi({ description: "When the preview is deleted (extend moves it)." }),
    created_at: at(),
    updated_at: at(),
  })
  .openapi("Preview");

export const Connections = z
  .object({
    direct_url: z.string().openapi({ description: "postgres:// URL with the preview role's password" }),
    pooled_url: z.string().nullable().openapi({ description: "null: there is no pooler" }),
    username: z.string(),
  })
  .openapi("Connections");

export const PreviewParams = z.object({
  previewID: z
    .string()
    .min(1)
    .openapi({ param: { name: "previewID", in: "path" }, description: "Preview database id." }),
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

export const PreviewConnectionsResponse = z.object({ connections: Connections });

export const CreatePreviewResponse = z.object({ preview: Preview, job: Job });

export const DeletePreviewResponse = z.object({ job: Job });

export const ExtendPreviewResponse = z.object({ preview: Preview });

export const GetPreviewResponse = z.object({ preview: Preview });

export const ListPreviewsQuery = listQuery(100, 100);

export const ListPreviewsResponse = z.object({ preview_databases: z.array(Preview) });

export const PromotePreviewRequest = z
  .object({
    approval_token: z.string().max(200).optional().openapi({
      description:
        "ap_...: an unused project.promote_preview approval of the preview's project (POST /v1/projects/{projectID}/approvals, by an organization admin).",
    }),
  })
  .openapi("PromotePreviewRequest");

export const PromotePreviewResponse = z.object({ job: Job });

export const ResetPreviewResponse = z.object({ job: Job });
