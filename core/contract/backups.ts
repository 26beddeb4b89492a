import { z } from "../zod.ts";
import { Job } from "./jobs.ts";
import { at, atOrNull, listQuery } from "./shared.ts";

export const backupStates = ["pending", "running", "completed", "failed", "expired"] as const;
export const verificationStates = ["pending", "running", "verified", "failed"] as const;

/** The Backup as the API shows it (SPEC section 1): exactly these fields. */
export const backupSchema = z.object({
  id: z.string(),
  project_id: z.string(),
  database_name: z.string(),
  label: z.string(),
  backup_key: z.string(),
  size_bytes: z.number().int(),
  state: z.enum(backupStates),
  verification_state: z.enum(verificationStates),
  verified_at: z.string().nullable(),
  verification_error: z.string().nullable(),
  created_at: z.string(),
});

export const requestBackupInput = z.object({
  label: z.string().max(200).optional(),
  retention_days: z.number().int().min(1).max(365).optional(),
});

/** The Download as the API shows it: exactly these fields. */
export const downloadSchema = z.object({
  download_url: z.string(),
  expires_at: z.string(),
  size_bytes: z.number().int(),
  sha256: z.string(),
});

/** Wire schemas of the backups routes: the records above, named as OpenAPI components. */
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
