import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import type { Readable, Writable } from "node:stream";
import { WorkerFailure, classify } from "./classify.ts";
import { toolEnv, type ClusterConnection } from "./pgconn.ts";
import type { PgTools } from "./pgtools.ts";
import { startTool, type Tool } from "./process.ts";
import { dropThrowaway, throwawayDatabaseName } from "./scratch.ts";
import { checkRestored, createThrowaway, verificationFailed, type VerifyResult } from "./verify.ts";

export interface StreamVerificationInput {
  s3: S3Client;
  bucket: string;
  /** Where the throwaway database is created (the project's cluster, or a verification server). */
  conn: ClusterConnection;
  backupId: string;
  attempt: number;
  signal: AbortSignal;
}

/**
 * A backup's verification restore, run while the dump is being written instead of after it: the
 * archive's bytes go to `pg_restore` (into the attempt's throwaway database) in the same order and
 * from the same buffers as they go through the SHA-256 and into the upload. The dump no longer
 * waits for a second download and the restore overlaps it.
 *
 * What it proves is what the restore from the stored object proved: `finish` reads the stored
 * object back and requires its SHA-256 to be the one of the streamed bytes, so the bytes that
 * restored are the bytes stored; then pg_restore's exit and every table's row count against the
 * counts read from the archive (checkRestored, shared with restores into previews).
 */
export class StreamVerification {
  private tool: Tool | undefined;
  private started = 0;
  private closed = false;
  readonly database: string;

  constructor(private readonly input: StreamVerificationInput) {
    this.database = throwawayDatabaseName(input.backupId, input.attempt);
  }

  /** dumpToS3's `openSink`: the throwaway database, and pg_restore reading the archive on its stdin. */
  async open(tools: PgTools): Promise<Writable> {
    const { conn, signal } = this.input;
    this.started = Date.now();
    await createThrowaway(conn, this.database);
    const tool = startTool(
      tools.pgRestore,
      ["--no-owner", "--no-acl", "--exit-on-error", "--no-password", "--dbname", this.database],
      toolEnv(conn, this.database),
      {
        secrets: [conn.password],
        keepStdout: true,
      },
    );
    this.tool = tool;
    const onAbort = () => tool.kill();
    signal.addEventListener("abort", onAbort, { once: true });
    void tool.exited.then(() => signal.removeEventListener("abort", onAbort));
    return tool.stdin;
  }

  /** After the dump (the upload is complete): the stored object's SHA-256, pg_restore's outcome, the row counts. */
  async finish(expected: { key: string; sha256: string; rowCounts: Record<string, number> }): Promise<VerifyResult> {
    try {
      const tool = this.tool;
      if (!tool) throw new WorkerFailure("transient", "The verification restore never started.");
      const [exit, stored] = await Promise.all([tool.exited, this.storedSha256(expected.key)]);
      if (this.input.signal.aborted) throw new WorkerFailure("transient", "The backup was interrupted.");
      const report = tool.report(exit);
      if (stored !== expected.sha256) {
        throw verificationFailed("The stored backup file is corrupted: its SHA-256 does not match the one computed while it was written.", report);
      }
      await checkRestored({ conn: this.input.conn, database: this.database, expectedRowCounts: expected.rowCounts, fail: verificationFailed, exit, report });
      return { restoreMs: Date.now() - this.started, report };
    } catch (err) {
      throw classify(err);
    } finally {
      await this.close();
    }
  }

  /** Stops pg_restore and drops the throwaway database; safe to call more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.tool) {
      this.tool.stdin.destroy();
      this.tool.kill();
      await this.tool.exited;
    }
    if (this.started) await dropThrowaway(this.input.conn, this.database);
  }

  /** The SHA-256 of the object as stored, read back whole. */
  private async storedSha256(key: string): Promise<string> {
    const hash = createHash("sha256");
    try {
      const object = await this.input.s3.send(new GetObjectCommand({ Bucket: this.input.bucket, Key: key }), { abortSignal: this.input.signal });
      for await (const chunk of object.Body as Readable) hash.update(chunk as Buffer);
    } catch (err) {
      if (this.input.signal.aborted) throw new WorkerFailure("transient", "The backup was interrupted.", { cause: err });
      throw classify(err, "storage");
    }
    return hash.digest("hex");
  }
}
