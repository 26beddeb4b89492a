import { AbortMultipartUploadCommand, CopyObjectCommand, DeleteObjectCommand, type S3Client } from "@aws-sdk/client-s3";

/*
 * What happens to an artifact object after the upload that wrote it: its checksum stamped, an
 * unfinished multipart upload aborted, the object deleted. Apart from the dump so that the
 * dispatcher's cleanup of failed backups does not bundle the dump and archive code.
 */

/** S3's CopyObject limit: larger artifacts keep their SHA-256 on the backup record only. */
const COPY_OBJECT_LIMIT = 5 * 1024 ** 3;

/**
 * Adds the SHA-256 to the object's metadata. It is known only at the end of the stream and S3
 * metadata is immutable, so an in-place copy (server-side, no bytes through the worker) writes it;
 * the worker does this once the restore has verified the artifact, beside nothing else, so the
 * copy is off the dump's critical path. Objects over CopyObject's 5 GiB limit keep the checksum
 * on the backup record only.
 */
export async function stampChecksum(
  s3: S3Client,
  bucket: string,
  key: string,
  sizeBytes: number,
  metadata: Record<string, string>,
  sha256: string,
): Promise<void> {
  if (sizeBytes > COPY_OBJECT_LIMIT) return;
  await s3.send(
    new CopyObjectCommand({
      Bucket: bucket,
      Key: key,
      CopySource: `${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`,
      MetadataDirective: "REPLACE",
      ContentType: "application/octet-stream",
      Metadata: { ...metadata, sha256 },
    }),
  );
}

/** Aborts a multipart upload (of this attempt or of a dead one); gone already is fine. */
export async function abortUpload(s3: S3Client, bucket: string, key: string, uploadId: string | undefined | null): Promise<void> {
  if (!uploadId) return;
  await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
}

export async function deleteArtifact(s3: S3Client, bucket: string, key: string): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}
