/**
 * A physical base backup: `pg_basebackup -Ft -D - -X none` (one tar on stdout, the backup
 * manifest inside it), compressed by us (the server cannot compress a tar that carries its
 * manifest on stdout), streamed to S3 with its SHA-256, and at the same time extracted into a
 * scratch directory that `pg_verifybackup` checks against the manifest (PostgreSQL 15's
 * pg_verifybackup reads plain directories only). `-X none`: the WAL comes from the archive.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Transform } from "node:stream";
import { createGzip } from "node:zlib";
import type { S3Client } from "@aws-sdk/client-s3";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
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
  /** Scratch space for the verification copy (default: the OS temp dir). */
  scratchDir?: string;
  gzipLevel?: number;
}

export class BaseBackupError extends Error {
  override name = "BaseBackupError";
}

export async function takeBaseBackup(input: BaseBackupInput): Promise<BaseBackupResult> {
  const scratch = await mkdtemp(join(input.scratchDir ?? tmpdir(), "capydb-basebackup-"));
  const env = toolEnv(input.conn, input.conn.adminDatabase);
  const tool = startTool(
    join(input.binDir, "pg_basebackup"),
    ["-D", "-", "-Ft", "-X", "none", "--manifest-checksums=SHA256", "--checkpoint=fast", "--no-password", "-l", input.label],
    env,
    { secrets: [input.conn.password] },
  );
  const extract = spawn("tar", ["-x", "-f", "-", "-C", scratch], { stdio: ["pipe", "ignore", "pipe"] });
  let tarErr = "";
  extract.stderr.on("data", (d: Buffer) => (tarErr = (tarErr + d.toString()).slice(-2000)));
  extract.stdin.on("error", () => undefined);
  const extracted = new Promise<number | null>((r) => extract.once("close", (code) => r(code)));
  const onAbort = () => {
    tool.kill();
    extract.kill("SIGKILL");
  };
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
    // One source, two readers (pipe holds the source while either is full): the upload and the extraction.
    rawCount.pipe(gz).pipe(meter);
    rawCount.pipe(extract.stdin);
    const upload = new Upload({
      client: input.s3,
      params: { Bucket: input.bucket, Key: input.key, Body: meter, ContentType: "application/gzip" },
      partSize: 8 * 1024 * 1024,
      queueSize: 4,
      leavePartsOnError: false,
    });
    const [exit, , tarCode] = await Promise.all([tool.exited, upload.done(), extracted]);
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
    if (tarCode !== 0) throw new BaseBackupError(`extracting the base backup for verification failed: ${tarErr.trim()}`);

    const verify = startTool(
      join(input.binDir, "pg_verifybackup"),
      ["--no-parse-wal", "--quiet", scratch],
      { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" },
      { secrets: [], keepStdout: true },
    );
    const vexit = await verify.exited;
    if (vexit.code !== 0)
      throw new BaseBackupError(`pg_verifybackup found the base backup does not match its manifest: ${verify.report(vexit).stderr.trim().slice(-1000)}`);

    const manifest = await readFile(join(scratch, "backup_manifest"));
    const ranges = (JSON.parse(manifest.toString("utf8")) as { "WAL-Ranges"?: { Timeline: number; "Start-LSN": string; "End-LSN": string }[] })["WAL-Ranges"];
    const range = ranges?.[0];
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
    extract.kill("SIGKILL");
    await rm(scratch, { recursive: true, force: true });
  }
}
