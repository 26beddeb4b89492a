import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createWriteStream, mkdtempSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Transform, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { createClosedDatabase, openDatabase } from "./isolation.ts";
import { WorkerFailure, classify, classifyText, firstErrorLine, type ToolReport } from "./classify.ts";
import { closeQuietly, connect, countRows, toolEnv, type ClusterConnection } from "./pgconn.ts";
import type { PgTools } from "./pgtools.ts";
import { startTool, type ToolExit } from "./process.ts";
import { dropThrowaway, throwawayDatabaseName } from "./scratch.ts";

export interface VerifyInput {
  s3: S3Client;
  bucket: string;
  key: string;
  expectedSha256: string;
  expectedRowCounts: Record<string, number>;
  /** Where the throwaway database is created (the project's cluster, or a verification server). */
  conn: ClusterConnection;
  /** Names the throwaway database, so the cleanup of a failed backup finds what any attempt left. */
  backupId: string;
  /** The job attempt: each attempt restores into its own database, so a stale attempt never drops a newer one's. */
  attempt: number;
  tools: PgTools;
  signal: AbortSignal;
}

export interface VerifyResult {
  restoreMs: number;
  report: ToolReport;
}

/** A restore-check failure: permanent, and it fails the backup's verification. */
export const verificationFailed = (message: string, report?: ToolReport, cause?: unknown) =>
  new WorkerFailure("permanent", message, { verification: true, report, cause });

/**
 * Creates the attempt's empty throwaway database (dropping one a crashed run left). A server that
 * will not give one cannot verify anything: that is the verification failing.
 */
export async function createThrowaway(conn: ClusterConnection, name: string): Promise<void> {
  await dropThrowaway(conn, name);
  let admin: pg.Client | undefined;
  try {
    admin = await connect(conn, conn.adminDatabase);
    // Closed from the moment it exists: another tenant's preview role on a shared cluster must
    // never see what is restored here (core/pg/isolation.ts).
    await createClosedDatabase(admin, name);
    await openDatabase(admin, name);
  } catch (err) {
    const c = classify(err);
    if (c.classification === "permanent") throw verificationFailed(`Could not create the scratch database for the restore check: ${c.message}`, undefined, err);
    throw c;
  } finally {
    await closeQuietly(admin);
  }
}

/** Writes `source` into `sink` with backpressure; stops writing (but keeps reading) once the sink is gone. */
async function feed(source: Readable, sink: Writable, onChunk: (chunk: Buffer) => void, signal: AbortSignal): Promise<void> {
  let open = true;
  const closed = new Promise<void>((resolve) => {
    sink.once("close", resolve);
    sink.once("error", resolve);
  }).then(() => {
    open = false;
  });
  for await (const chunk of source as AsyncIterable<Buffer>) {
    if (signal.aborted) throw new Error("verification interrupted");
    onChunk(chunk);
    if (open && !sink.write(chunk)) await Promise.race([once(sink, "drain"), closed]);
  }
  if (open) sink.end();
}

export interface RestoreInput {
  s3: S3Client;
  bucket: string;
  key: string;
  expectedSha256: string | null;
  expectedRowCounts: Record<string, number>;
  /** Who restores: every object pg_restore creates belongs to this connection's user. */
  conn: ClusterConnection;
  /** An existing, empty database. */
  database: string;
  tools: PgTools;
  signal: AbortSignal;
  /** Builds the failure for a restore that did not work (a bad artifact, a count mismatch). */
  failed?: (message: string, report?: ToolReport, cause?: unknown) => WorkerFailure;
  /** Words for the messages: "backup" (verification) or "restore". */
  what?: string;
  /**
   * Above 1: the object is first downloaded (and hashed) to a file in `tempDir`, then restored by
   * `pg_restore --jobs` (parallel restore needs a seekable archive). Falls back to streaming when
   * the disk lacks room for it.
   */
  jobs?: number;
  tempDir?: string;
}

/**
 * Restores an artifact into an existing database and checks it: streams the object from S3
 * through a SHA-256 into `pg_restore --no-owner --no-acl` (objects belong to the connecting user),
 * then compares every table's row count with the counts from the dump's snapshot. Shared by the
 * backup's verification and by restores into preview databases.
 */
export async function restoreInto(input: RestoreInput): Promise<VerifyResult> {
  const fail = input.failed ?? verificationFailed;
  const started = Date.now();
  const object = await input.s3.send(new GetObjectCommand({ Bucket: input.bucket, Key: input.key })).catch((err: unknown) => {
    throw classify(err, "storage");
  });
  const dir = (input.jobs ?? 1) > 1 ? tempDirFor(input.tempDir ?? tmpdir(), object.ContentLength) : undefined;
  if (dir) {
    try {
      return await restoreFromFile(input, object.Body as Readable, dir, fail, started);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const tool = startTool(
    input.tools.pgRestore,
    ["--no-owner", "--no-acl", "--exit-on-error", "--no-password", "--dbname", input.database],
    toolEnv(input.conn, input.database),
    { secrets: [input.conn.password], keepStdout: true },
  );
  const onAbort = () => tool.kill();
  input.signal.addEventListener("abort", onAbort, { once: true });
  const hash = createHash("sha256");
  try {
    await feed(object.Body as Readable, tool.stdin, (c) => hash.update(c), input.signal);
  } catch (err) {
    tool.kill();
    await tool.exited;
    if (input.signal.aborted) throw new WorkerFailure("transient", `The ${input.what ?? "backup"} was interrupted.`, { cause: err });
    throw classify(err, "storage");
  } finally {
    input.signal.removeEventListener("abort", onAbort);
  }
  const exit = await tool.exited;
  const report = tool.report(exit);
  const sha256 = hash.digest("hex");
  if (input.expectedSha256 && sha256 !== input.expectedSha256) {
    throw fail("The stored backup file is corrupted: its SHA-256 does not match the one computed while it was written.", report);
  }
  await checkRestored({ ...input, fail, exit, report });
  return { restoreMs: Date.now() - started, report };
}

/**
 * After pg_restore: its exit (an error fails the check, unless the server was only briefly
 * unavailable), then every table's row count in the restored database against the dump's.
 */
export async function checkRestored(input: {
  conn: ClusterConnection;
  database: string;
  expectedRowCounts: Record<string, number>;
  fail: (message: string, report?: ToolReport, cause?: unknown) => WorkerFailure;
  exit: ToolExit;
  report: ToolReport;
}): Promise<void> {
  const { fail, exit, report } = input;
  if (exit.code !== 0) {
    const known = classifyText(report.stderr);
    if (known?.classification === "transient") throw new WorkerFailure("transient", known.message, { report });
    throw fail(`The backup did not restore: ${firstErrorLine(report.stderr) || `pg_restore exited with ${exit.code ?? exit.signal}`}`, report);
  }

  let restored: pg.Client | undefined;
  let counts: Record<string, number>;
  try {
    restored = await connect(input.conn, input.database);
    const tables = Object.keys(input.expectedRowCounts).map((k) => {
      const dot = k.indexOf(".");
      return { schema: k.slice(0, dot), name: k.slice(dot + 1) };
    });
    counts = await countRows(restored, tables).catch((err: unknown) => {
      const e = err as { code?: string };
      if (e.code === "42P01") throw fail(`The restored backup is missing a table: ${String((err as Error).message)}.`, report, err);
      throw err;
    });
  } finally {
    await closeQuietly(restored);
  }
  const mismatches = Object.entries(input.expectedRowCounts)
    .filter(([table, n]) => counts[table] !== n)
    .map(([table, n]) => `${table} has ${counts[table] ?? "no"} rows, expected ${n}`);
  if (mismatches.length) {
    throw fail(
      `The restored backup's row counts differ from the source: ${mismatches.slice(0, 3).join("; ")}${mismatches.length > 3 ? ` (and ${mismatches.length - 3} more)` : ""}.`,
      report,
    );
  }
}

/** A private directory for the downloaded archive when the disk has room for it (twice its size); else undefined (stream instead). */
function tempDirFor(base: string, size: number | undefined): string | undefined {
  try {
    const fs = statfsSync(base);
    if (size === undefined || fs.bavail * fs.bsize < 2 * size) return undefined;
    return mkdtempSync(join(base, "capydb-restore-"));
  } catch {
    return undefined;
  }
}

/**
 * The parallel path: the object to a local file through the SHA-256 (a corrupted file is refused
 * before anything is restored), then `pg_restore --jobs` from it.
 */
async function restoreFromFile(
  input: RestoreInput,
  body: Readable,
  dir: string,
  fail: NonNullable<RestoreInput["failed"]>,
  started: number,
): Promise<VerifyResult> {
  const file = join(dir, "archive.dump");
  const hash = createHash("sha256");
  try {
    await pipeline(
      body,
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      }),
      createWriteStream(file, { mode: 0o600 }),
      { signal: input.signal },
    );
  } catch (err) {
    if (input.signal.aborted) throw new WorkerFailure("transient", `The ${input.what ?? "backup"} was interrupted.`, { cause: err });
    throw classify(err, "storage");
  }
  if (input.expectedSha256 && hash.digest("hex") !== input.expectedSha256) {
    throw fail("The stored backup file is corrupted: its SHA-256 does not match the one computed while it was written.");
  }
  const tool = startTool(
    input.tools.pgRestore,
    ["--no-owner", "--no-acl", "--exit-on-error", "--no-password", `--jobs=${input.jobs}`, "--dbname", input.database, file],
    toolEnv(input.conn, input.database),
    { secrets: [input.conn.password], keepStdout: true },
  );
  tool.stdin.end();
  const onAbort = () => tool.kill();
  input.signal.addEventListener("abort", onAbort, { once: true });
  let exit: ToolExit;
  try {
    exit = await tool.exited;
  } finally {
    input.signal.removeEventListener("abort", onAbort);
  }
  if (input.signal.aborted) throw new WorkerFailure("transient", `The ${input.what ?? "backup"} was interrupted.`);
  await checkRestored({ ...input, fail, exit, report: tool.report(exit) });
  return { restoreMs: Date.now() - started, report: tool.report(exit) };
}

/**
 * Proves the artifact restores: `restoreInto` a throwaway database, which is dropped whatever
 * happened.
 */
export async function verifyBackup(input: VerifyInput): Promise<VerifyResult> {
  const name = throwawayDatabaseName(input.backupId, input.attempt);
  const started = Date.now();
  try {
    await createThrowaway(input.conn, name);
    const result = await restoreInto({ ...input, database: name });
    return { restoreMs: Date.now() - started, report: result.report };
  } catch (err) {
    throw classify(err);
  } finally {
    await dropThrowaway(input.conn, name);
  }
}
