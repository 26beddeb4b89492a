/**
 * A physical base backup: `pg_basebackup -Ft -D - -X none` (one tar on stdout, the backup
 * manifest inside it), compressed by us (the server cannot compress a tar that carries its
 * manifest on stdout), streamed to S3 with its SHA-256, and checked against its manifest as it
 * streams (basebackup-check.ts: pg_verifybackup's checks without extracting a copy; PostgreSQL
 * 15-17's pg_verifybackup reads directories only, and the copy and its re-read cost more than the
 * backup itself). `-X none`: the WAL comes from the archive.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { Transform } from "node:stream";
import { finished } from "node:stream/promises";
import { createGzip } from "node:zlib";
import type { S3Client } from "@aws-sdk/client-s3";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { TarManifestCheck } from "./basebackup-check.ts";
import { toolEnv, type ClusterConnection } from "./pgconn.ts";
import { startTool } from "./process.ts";

export interface BaseBackupResult {
  timeline: number;
  startLsn: string;
  endLsn: string;
  /** Bytes of the tar, and stored (gzip) bytes with their SHA-256. */
  rawBytes: number;
  storedBytes: number;
  sha256: string;
  manifest: Buffer;
}

export interface BaseBackupInput {
  binDir: string;
  conn: ClusterConnection;
  s3: S3Client;
  bucket: string;
  key: string;
  manifestKey: string;
  label: string;
  signal?: AbortSignal;
  /** Unused since the check streams (no verification copy); kept for callers. */
  scratchDir?: string;
  gzipLevel?: number;
}

export class BaseBackupError extends Error {
  override name = "BaseBackupError";
}

export async function takeBaseBackup(input: BaseBackupInput): Promise<BaseBackupResult> {
  const env = toolEnv(input.conn, input.conn.adminDatabase);
  const tool = startTool(
    join(input.binDir, "pg_basebackup"),
    ["-D", "-", "-Ft", "-X", "none", "--manifest-checksums=SHA256", "--checkpoint=fast", "--no-password", "-l", input.label],
    env,
    { secrets: [input.conn.password] },
  );
  const check = new TarManifestCheck();
  const checked = finished(check).then(
    () => undefined,
    (err: unknown) => err as Error,
  );
  const onAbort = () => tool.kill();
  input.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    let rawBytes = 0;
    const rawCount = new Transform({
      transform(chunk: Buffer, _e, cb) {
        rawBytes += chunk.length;
        cb(null, chunk);
      },
    });
    const hash = createHash("sha256");
    let storedBytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        storedBytes += chunk.length;
        cb(null, chunk);
      },
    });
    const gz = createGzip({ level: input.gzipLevel ?? 1 });
    tool.stdout.pipe(rawCount);
    // One source, two readers (pipe holds the source while either is full): the upload, and the
    // manifest check hashing every file as it goes by.
    rawCount.pipe(gz).pipe(meter);
    rawCount.pipe(check);
    const upload = new Upload({
      client: input.s3,
      params: { Bucket: input.bucket, Key: input.key, Body: meter, ContentType: "application/gzip" },
      partSize: 8 * 1024 * 1024,
      queueSize: 4,
      leavePartsOnError: false,
    });
    const [exit, , checkError] = await Promise.all([tool.exited, upload.done(), checked]);
    if (exit.code !== 0)
      throw new BaseBackupError(
        `pg_basebackup failed (exit ${exit.code ?? exit.signal}): ${tool
          .report(exit)
          .stderr.trim()
          .split("\n")
          .filter((l) => !l.startsWith("NOTICE"))
          .slice(-3)
          .join(" ")}`,
      );
    if (checkError) throw new BaseBackupError(`the base backup could not be checked against its manifest: ${checkError.message}`);
    let ranges: ReturnType<TarManifestCheck["verify"]>["walRanges"];
    try {
      ranges = check.verify().walRanges;
    } catch (err) {
      throw new BaseBackupError(`the base backup does not match its manifest: ${(err as Error).message}`);
    }
    const manifest = check.manifest!;
    const range = ranges[0];
    if (!range) throw new BaseBackupError("the backup manifest has no WAL range");
    await input.s3.send(new PutObjectCommand({ Bucket: input.bucket, Key: input.manifestKey, Body: manifest, ContentType: "application/json" }));
    return {
      timeline: range.Timeline,
      startLsn: range["Start-LSN"],
      endLsn: ranges.at(-1)!["End-LSN"],
      rawBytes,
      storedBytes,
      sha256: hash.digest("hex"),
      manifest,
    };
  } finally {
    input.signal?.removeEventListener("abort", onAbort);
    tool.kill();
  }
}
