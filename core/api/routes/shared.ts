import { z } from "@hono/zod-openapi";
import { backupSchema, requestBackupInput } from "../backups/backups.ts";
import { putScheduleInput, scheduledBackupSchema } from "../backups/schedules.ts";
import { downloadSchema } from "../downloads/downloads.ts";
import { exportSchema } from "../exports/exports.ts";
import { jobSchema } from "../jobs/jobs.ts";

/**
 * The wire schemas: the domain modules' own schemas, named as OpenAPI components. The handlers
 * validate with them and the OpenAPI document is generated from them, so the two cannot differ.
 */
const timestamp = { type: "string", format: "date-time", example: "2026-11-26T02:15:00Z" } as const;
// Fresh field schemas (not the domain ones' fields): their OpenAPI metadata must not depend on the
// order in which modules were evaluated relative to @hono/zod-openapi's zod extension.
const at = () => z.string().openapi(timestamp);
const atOrNull = () => z.string().nullable().openapi(timestamp);

export const ScheduledBackup = scheduledBackupSchema
  .extend({ last_run_at: atOrNull(), created_at: at(), updated_at: at() })
  .openapi("ScheduledBackup");

export const Backup = backupSchema.extend({ verified_at: atOrNull(), created_at: at() }).openapi("Backup");

export const Job = jobSchema
  .extend({ claimed_at: atOrNull(), started_at: atOrNull(), completed_at: atOrNull(), created_at: at(), updated_at: at() })
  .openapi("Job");

/** Unknown fields are ignored (as most JSON APIs do), so older and newer clients interoperate. */
export const PutScheduledBackupRequest = putScheduleInput.extend({}).openapi("PutScheduledBackupRequest");

export const CreateBackupRequest = requestBackupInput
  .extend({
    label: requestBackupInput.shape.label.meta({ description: "At most 200 characters." }),
    retention_days: requestBackupInput.shape.retention_days.meta({ description: "Overrides the schedule's retention (1-365 days)." }),
  })
  .openapi("CreateBackupRequest");

export const ProjectParams = z.object({
  projectID: z.string().min(1).openapi({ param: { name: "projectID", in: "path" }, description: "Project id." }),
});

/**
 * A list's `limit` query parameter: at least 1; a value above the list's maximum is clamped to it
 * (CapyDB's published clients ask for more than some lists serve), not refused.
 */
export const clampedLimit = (max: number, byDefault: number) =>
  z.coerce
    .number()
    .int()
    .min(1)
    .default(byDefault)
    .transform((n) => Math.min(n, max))
    .openapi({ description: `Page size (default ${byDefault}); values above ${max} are treated as ${max}.`, type: "integer", minimum: 1 });

/** A list's paging query: `limit` (clamped to the list's maximum) and the previous page's `cursor`. */
export const listQuery = (max: number, byDefault: number) =>
  z.object({
    limit: clampedLimit(max, byDefault),
    cursor: z.string().max(2000).optional().openapi({ description: "The `x-next-cursor` header of the previous page." }),
  });

export const security: Record<string, string[]>[] = [{ bearerAuth: [] }, { apiKeyAuth: [] }];

export const Download = downloadSchema
  .extend({
    download_url: z.string().openapi({ description: "A signed S3 GET URL: fetch it without credentials (plain `curl -o`) before `expires_at`." }),
    expires_at: at(),
    size_bytes: z.number().int().openapi({ description: "The artifact's size: the downloaded file must have exactly this many bytes." }),
    sha256: z.string().openapi({ description: "Hex SHA-256 of the artifact: the downloaded file must hash to it." }),
  })
  .openapi("Download");

export const Export = exportSchema
  .extend({
    created_at: at(),
    expires_at: z.string().openapi({ ...timestamp, description: "When the dispatcher deletes the dump (the export then reads `expired`)." }),
  })
  .openapi("Export");

export const ExportParams = ProjectParams.extend({
  exportID: z.string().min(1).openapi({ param: { name: "exportID", in: "path" }, description: "Export id." }),
});
