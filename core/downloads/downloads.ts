import type { z } from "../zod.ts";
import type { downloadSchema } from "../contract/backups.ts";
import type { BackupItem } from "../backups/backups.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";

/** How long a signed download URL works: long enough to start a large download, short enough to leak little. */
export const DOWNLOAD_TTL_SECONDS = 15 * 60;

export type Download = z.infer<typeof downloadSchema>;

/** A stored artifact that may be handed out: where it is and what the client must find in it. */
export interface Artifact {
  key: string;
  size_bytes: number;
  sha256: string;
  /** The file name a browser saves it under. */
  filename: string;
}

/**
 * A signed S3 GET URL for the artifact, valid `DOWNLOAD_TTL_SECONDS`. The API only signs (it needs
 * s3:GetObject, never streams a byte): the client fetches the object straight from S3 and checks
 * the size and SHA-256 given beside the URL. Locally the URL points at the local S3 endpoint.
 * Signed at `deps.now()`, so `expires_at` is exactly the signature's X-Amz-Date + X-Amz-Expires.
 */
export async function signDownload(deps: Pick<Deps, "presignGet" | "bucket" | "now">, artifact: Artifact): Promise<Download> {
  const now = deps.now();
  // Whole seconds: X-Amz-Date has no milliseconds, and expires_at must agree with it.
  const signingDate = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const url = await deps.presignGet({
    bucket: deps.bucket,
    key: artifact.key,
    query: {
      "response-content-disposition": `attachment; filename="${artifact.filename}"`,
      "response-content-type": "application/octet-stream",
    },
    expiresIn: DOWNLOAD_TTL_SECONDS,
    signingDate,
  });
  return {
    download_url: url,
    expires_at: iso(new Date(signingDate.getTime() + DOWNLOAD_TTL_SECONDS * 1000)),
    size_bytes: artifact.size_bytes,
    sha256: artifact.sha256,
  };
}

/**
 * The artifact of a backup that may be downloaded, or a 409 saying why not. A completed backup
 * has its artifact, verified by a restore, until the retention sweep deletes it (it then reads
 * `expired`); a backup past `expires_at` that the safety rule keeps (the project's newest verified
 * one) still has its artifact, so it stays downloadable.
 */
export function backupArtifact(backup: BackupItem): Artifact {
  switch (backup.state) {
    case "pending":
    case "running":
      throw new AppError("conflict", `backup ${backup.id} is ${backup.state}: it can be downloaded once it has completed`);
    case "failed":
      throw new AppError(
        "conflict",
        `backup ${backup.id} failed, so there is nothing to download${backup.verification_error ? `: ${backup.verification_error}` : ""}`,
      );
    case "expired":
      throw new AppError("conflict", `backup ${backup.id} expired (retention) and its dump was deleted`);
    case "completed":
      break;
  }
  if (!backup.sha256) throw new AppError("conflict", `backup ${backup.id} has no recorded checksum, so it cannot be downloaded safely`);
  return { key: backup.backup_key, size_bytes: backup.size_bytes, sha256: backup.sha256, filename: `${backup.id}.dump` };
}
