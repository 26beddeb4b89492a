import type { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createHash } from "node:crypto";
import { PassThrough, Transform, type Writable } from "node:stream";
import type pg from "pg";
import { abortUpload, deleteArtifact } from "../aws/artifacts.ts";
import { storedArchive } from "./archive.ts";
import { WorkerFailure, classify, classifyText, firstErrorLine, type ToolReport } from "./classify.ts";
import { closeQuietly, connect, countRows, listTables, serverMajor, serverVersion, toolEnv, type ClusterConnection } from "./pgconn.ts";
import { pickPgTools, type PgTools } from "./pgtools.ts";
import { startTool } from "./process.ts";

export interface DumpInput {
  s3: S3Client;
  bucket: string;
  key: string;
  conn: ClusterConnection;
  database: string;
  pgBinDirs: readonly string[];
  partSizeBytes: number;
  uploadQueueSize: number;
  lockWaitTimeoutMs: number;
  /** Aborts the dump (the claim was lost): kills pg_dump, aborts the upload. */
  signal: AbortSignal;
  /** Called once the multipart upload exists, so a later attempt can abort it if this process dies. */
  onUploadId?(uploadId: string): Promise<void>;
  metadata?: Record<string, string>;
  /**
   * The archive's zlib level (0-9). Default 1: on the bench's data it stores 3 % more than
   * pg_dump's default (6) and 9 % more than level 4, for about a third less CPU than level 4 (see
   * README, Benchmarks). pg_dump runs uncompressed and the worker compresses (archive.ts) in
   * parallel, off pg_dump's single thread; a pg_dump newer than the archive reader knows
   * compresses itself, as before.
   */
  compressLevel?: number;
  /** Count each table's rows from the archive (backups do; an export needs no counts). Default true. */
  countRows?: boolean;
  /**
   * Opens a second reader of the archive (the backup's verification restore), once the tools are
   * known and before pg_dump starts: it receives every byte, in order, as it is hashed and
   * uploaded, with backpressure. Once it closes it receives nothing more and the dump goes on.
   */
  openSink?(tools: PgTools): Promise<Writable>;
  /** Where a fallback to counting in the snapshot is reported. */
  warn?(message: string, fields: Record<string, unknown>): void;
}

export interface DumpResult {
  sizeBytes: number;
  sha256: string;
  /** Row count of every table in the dump, read from the archive itself (empty when not counted). */
  rowCounts: Record<string, number>;
  /** Where the counts come from: the archive's data (the normal case), or `count(*)` in the dump's snapshot when the archive could not be read. */
  rowCountsFrom: "archive" | "snapshot" | "none";
  serverVersion: string;
  tools: PgTools;
  dumpMs: number;
  report: ToolReport;
  /** The object's metadata as uploaded (versions); `stampChecksum` adds the SHA-256 after verification. */
  metadata: Record<string, string>;
}

export const DEFAULT_COMPRESS_LEVEL = 1;
/** The newest pg_dump whose archive (1.16) archive.ts knows how to compress. */
const NEWEST_READABLE_PG_DUMP = 17;

/**
 * A second reader of the archive stream: written with backpressure until it closes (a restore that
 * stopped early), then skipped. Up to SIDE_BUFFER bytes wait for it, so that the dump and the
 * restore each run at their own pace over short stalls instead of in lockstep at a pipe's 64 KiB.
 */
class SideSink {
  private open = true;
  private readonly buffer = new PassThrough({ writableHighWaterMark: 1024 * 1024, readableHighWaterMark: SIDE_BUFFER });
  constructor(sink: Writable) {
    this.buffer.pipe(sink);
    const closed = () => {
      this.open = false;
      this.buffer.unpipe(sink);
      this.buffer.destroy();
    };
    sink.once("close", closed);
    sink.once("error", closed);
  }
  write(chunk: Buffer): Promise<void> | undefined {
    if (!this.open) return undefined;
    if (this.buffer.write(chunk)) return undefined;
    return new Promise((resolve) => {
      const done = () => {
        this.buffer.off("drain", done);
        this.buffer.off("close", done);
        resolve();
      };
      this.buffer.once("drain", done);
      this.buffer.once("close", done);
    });
  }
  end(): void {
    if (this.open && !this.buffer.writableEnded) this.buffer.end();
  }
}

const SIDE_BUFFER = 8 * 1024 * 1024;

/**
 * Dumps `database` into `s3://bucket/key` without a temporary file: pg_dump writes an uncompressed
 * custom-format archive to its stdout; the archive reader (archive.ts) counts every table's rows
 * and compresses it in parallel on the way, and the result goes through a SHA-256 and a byte
 * counter into a multipart upload, so memory stays at about partSize * (queueSize + 1) whatever
 * the size, and the customer's tables are read once, by pg_dump. A REPEATABLE READ transaction
 * exports the snapshot pg_dump imports (--snapshot) and lists the tables in it; it stays open
 * until the dump ends so that, should the archive be unreadable to the counter (a pg_dump newer
 * than it knows), the counts are taken in that same snapshot instead. On failure nothing is left
 * in S3 (the upload is aborted) and the error is classified.
 */
export async function dumpToS3(input: DumpInput): Promise<DumpResult> {
  const secrets = [input.conn.password];
  const started = Date.now();
  let client: pg.Client | undefined;
  try {
    client = await connect(input.conn, input.database);
    const version = await serverVersion(client);
    const tools = await pickPgTools({ major: serverMajor(version.num), text: version.text }, input.pgBinDirs);
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const { rows } = await client.query<{ snapshot: string }>("SELECT pg_export_snapshot() AS snapshot");
    const snapshot = rows[0]!.snapshot;
    const tables = await listTables(client);
    const sink = input.openSink ? await input.openSink(tools) : undefined;
    const level = input.compressLevel ?? DEFAULT_COMPRESS_LEVEL;
    const workerCompresses = level > 0 && tools.major <= NEWEST_READABLE_PG_DUMP;

    const tool = startTool(
      tools.pgDump,
      [
        "--format=custom",
        `--compress=${workerCompresses ? 0 : level}`,
        `--snapshot=${snapshot}`,
        "--no-password",
        `--lock-wait-timeout=${input.lockWaitTimeoutMs}`,
      ],
      toolEnv(input.conn, input.database),
      { secrets },
    );
    tool.stdin.end();
    const onAbort = () => tool.kill();
    input.signal.addEventListener("abort", onAbort, { once: true });

    const hash = createHash("sha256");
    let bytes = 0;
    // pg_dump's output, compressed by the worker when pg_dump did not, its rows counted on the way.
    const { reader, archive } = storedArchive(tool.stdout, workerCompresses ? level : 0);
    const counter = input.countRows === false ? undefined : reader;
    const side = sink ? new SideSink(sink) : undefined;
    // The stream ends only once pg_dump has exited 0: a failed dump must never complete the upload.
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        bytes += chunk.length;
        const wait = side?.write(chunk);
        if (!wait) cb(null, chunk);
        else wait.then(() => cb(null, chunk), cb);
      },
      flush(cb) {
        tool.exited.then(
          (exit) => cb(exit.code === 0 ? null : new Error(`pg_dump exited with ${exit.code ?? exit.signal ?? "an error"}`)),
          (err: unknown) => cb(err as Error),
        );
      },
    });
    archive.on("error", (err) => meter.destroy(err));
    archive.pipe(meter);

    const upload = new Upload({
      client: input.s3,
      params: {
        Bucket: input.bucket,
        Key: input.key,
        Body: meter,
        ContentType: "application/octet-stream",
        Metadata: { ...input.metadata, "pg-dump-version": tools.version, "server-version": version.text },
      },
      partSize: input.partSizeBytes,
      queueSize: input.uploadQueueSize,
      leavePartsOnError: false,
    });
    let recording: Promise<void> | undefined;
    upload.on("httpUploadProgress", () => {
      if (!recording && upload.uploadId && input.onUploadId) recording = input.onUploadId(upload.uploadId).catch(() => undefined);
    });
    const onAbortUpload = () => void upload.abort().catch(() => undefined);
    input.signal.addEventListener("abort", onAbortUpload, { once: true });

    let failedFirst: "database" | "storage" | undefined;
    let stored = false;
    const uploading = upload
      .done()
      .then(() => void (stored = true))
      .catch((err: unknown) => {
        failedFirst ??= "storage";
        throw err;
      });
    const counting = uploading.then(async () => {
      if (!counter) return { counts: {}, from: "none" as const };
      const fromArchive = await counter.finish();
      if (fromArchive)
        return {
          counts: Object.fromEntries(tables.map((t) => [`${t.schema}.${t.name}`, fromArchive[`${t.schema}.${t.name}`] ?? 0])),
          from: "archive" as const,
        };
      input.warn?.("could not count rows from the archive; counting in the dump's snapshot instead", { reason: counter.unsupported });
      try {
        return { counts: await countRows(client!, tables), from: "snapshot" as const };
      } catch (err) {
        failedFirst ??= "database";
        throw err;
      }
    });
    let rowCounts: Record<string, number>;
    let rowCountsFrom: DumpResult["rowCountsFrom"];
    try {
      ({ counts: rowCounts, from: rowCountsFrom } = await counting);
    } catch (err) {
      tool.kill();
      await upload.abort().catch(() => undefined);
      await abortUpload(input.s3, input.bucket, input.key, upload.uploadId);
      // The object is complete but its rows could not be counted: it is no backup.
      if (stored) await deleteArtifact(input.s3, input.bucket, input.key).catch(() => undefined);
      await Promise.allSettled([counting, uploading]);
      const exit = await tool.exited;
      const report = tool.report(exit, "");
      if (input.signal.aborted) throw new WorkerFailure("transient", "The backup was interrupted.", { report, cause: err });
      if (exit.code !== 0 && exit.code !== null) {
        const known = classifyText(report.stderr);
        throw new WorkerFailure(known?.classification ?? "transient", known?.message ?? `pg_dump failed: ${firstErrorLine(report.stderr)}`, {
          report,
          cause: err,
        });
      }
      // pg_dump succeeded or never got to fail: the counts or the upload did.
      const failure = classify(err, failedFirst ?? "storage");
      throw new WorkerFailure(failure.classification, failure.message, { report, cause: err });
    } finally {
      input.signal.removeEventListener("abort", onAbort);
      input.signal.removeEventListener("abort", onAbortUpload);
      side?.end();
      await recording;
    }
    await client.query("COMMIT").catch(() => undefined);
    const exit = await tool.exited;
    const sha256 = hash.digest("hex");
    const report = tool.report(exit, `[custom-format archive of ${bytes} bytes streamed to object storage]`);

    const metadata = { ...input.metadata, "pg-dump-version": tools.version, "server-version": version.text };
    return { sizeBytes: bytes, sha256, rowCounts, rowCountsFrom, serverVersion: version.text, tools, dumpMs: Date.now() - started, report, metadata };
  } catch (err) {
    throw classify(err);
  } finally {
    await closeQuietly(client);
  }
}
