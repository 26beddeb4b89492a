import type { Writable } from "node:stream";
import type { ClusterConnection } from "../pg/pgconn.ts";
import { dumpToS3, type DumpResult } from "../pg/dump.ts";
import type { Attempt } from "./runner.ts";
import type { PgTools } from "../pg/pgtools.ts";

/** What every record of a dumped artifact keeps (a backup adds its row counts and timing). */
export interface ArtifactFields {
  size_bytes: number;
  sha256: string;
  pg_dump_version: string;
  server_version: string;
}

export interface JobDumpInput {
  key: string;
  conn: ClusterConnection;
  database: string;
  /** The multipart upload exists: record it so that a later attempt can abort it. */
  onUploadId(uploadId: string): Promise<void>;
  metadata: Record<string, string>;
  /** Count each table's rows from the archive (a backup verifies against them; an export does not). */
  countRows: boolean;
  /** A second reader of the archive stream (the backup's verification restore). */
  openSink?(tools: PgTools): Promise<Writable>;
}

/**
 * A job's dump (backup or export): `dumpToS3` with the worker's settings and the attempt's abort
 * signal, between the dump hooks, and the artifact's fields for its record.
 */
export async function dumpForJob(a: Attempt, p: JobDumpInput): Promise<{ dump: DumpResult; artifact: ArtifactFields }> {
  const { deps, job, o, signal } = a;
  o.hooks?.onDumpStart?.(job.id);
  const dump = await dumpToS3({
    s3: deps.s3,
    bucket: deps.bucket,
    key: p.key,
    conn: p.conn,
    database: p.database,
    pgBinDirs: deps.pgBinDirs,
    partSizeBytes: o.partSizeBytes,
    uploadQueueSize: o.uploadQueueSize,
    lockWaitTimeoutMs: o.lockWaitTimeoutMs,
    compressLevel: o.dumpCompressLevel,
    countRows: p.countRows,
    openSink: p.openSink,
    signal,
    onUploadId: p.onUploadId,
    metadata: p.metadata,
    warn: (message, fields) => deps.log.warn(message, { job_id: job.id, ...fields }),
  }).finally(() => o.hooks?.onDumpEnd?.(job.id));
  return {
    dump,
    artifact: { size_bytes: dump.sizeBytes, sha256: dump.sha256, pg_dump_version: dump.tools.version, server_version: dump.serverVersion },
  };
}
