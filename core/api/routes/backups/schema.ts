import { z } from "../../../zod.ts";
import { backupSchema, requestBackupInput } from "../../../backups/backups.ts";
import { downloadSchema } from "../../../downloads/downloads.ts";
import { Job } from "../jobs/schema.ts";
import { at, atOrNull, listQuery } from "../shared.ts";

/** Wire schemas of the backups routes: the domain's own schemas, named as OpenAPI components. */
export const Backup = backupSchema.extend({ verified_at: atOrNull(), created_at: at() }).openapi("Backup");

export const CreateBackupRequest = requestBackupInput
  .extend({
    label: requestBackupInput.shape.label.meta({ description: "At most 200 characters." }),
    retention_days: requestBackupInput.shape.retention_days.meta({ description: "Overrides the schedule's retention (1-365 days)." }),
  })
  .openapi("CreateBackupRequest");

export const Download = downloadSchema
  .extend({
    download_url: z.string().openapi({ description: "A signed S3 GET URL: fetch it without credentials (plain `curl -o`) before `expires_at`." }),
    expires_at: at(),
    size_bytes: z.number().int().openapi({ description: "The artifact's size: the downloaded file must have exactly this many bytes." }),
    sha256: z.string().openapi({ description: "Hex SHA-256 of the artifact: the downloaded file must hash to it." }),
  })
  .openapi("Download");

export const CreateBackupResponse = z.object({ job: Job });

export const DownloadResponse = z.object({ download: Download });

export const ListBackupsQuery = listQuery(1000, 1000);

export const ListBackupsResponse = z.object({ backups: z.array(Backup) });
