import type pg from "pg";
import { WorkerFailure, firstErrorLine, type ToolReport } from "./classify.ts";
import { closeQuietly, connect, countRows, listTables, toolEnv, type ClusterConnection } from "./pgconn.ts";
import { pickPgTools } from "./pgtools.ts";
import { startTool } from "./process.ts";
import { checkRestored } from "./verify.ts";

export interface CopyDatabaseInput {
  /** Where the database is read (a recovery instance). */
  source: ClusterConnection;
  sourceDatabase: string;
  sourceMajor: number;
  /** Who restores: every object pg_restore creates belongs to this connection's user. */
  target: ClusterConnection;
  /** An existing, empty database. */
  targetDatabase: string;
  pgBinDirs: readonly string[];
  signal: AbortSignal;
  /** Builds the failure for a copy that did not work (a count mismatch, a refused object). */
  failed: (message: string, report?: ToolReport, cause?: unknown) => WorkerFailure;
}

export interface CopyDatabaseResult {
  rowCounts: Record<string, number>;
  report: ToolReport;
  ms: number;
}

/**
 * Copies one database from one server to another with `pg_dump | pg_restore`, streamed (nothing
 * lands on disk or in S3), then checks that every table holds as many rows as the source's did.
 * The source must not change meanwhile (a recovery instance: nothing else connects to it).
 */
export async function copyDatabase(input: CopyDatabaseInput): Promise<CopyDatabaseResult> {
  const started = Date.now();
  const tools = await pickPgTools({ major: input.sourceMajor, text: String(input.sourceMajor) }, input.pgBinDirs);
  // The source's rows are counted while it is dumped (nothing else changes it): the count does
  // not add its time before the copy.
  const counting = (async (): Promise<Record<string, number>> => {
    let client: pg.Client | undefined;
    try {
      client = await connect(input.source, input.sourceDatabase);
      return await countRows(client, await listTables(client));
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (e.code === "3D000") throw input.failed(`The database "${input.sourceDatabase}" did not exist at the restore time.`, undefined, err);
      throw input.failed(`The recovered database could not be read: ${e.message ?? String(err)}`, undefined, err);
    } finally {
      await closeQuietly(client);
    }
  })();
  counting.catch(() => undefined); // awaited below; a failure must not be unhandled meanwhile

  const dump = startTool(
    tools.pgDump,
    ["--format=custom", "--compress=0", "--no-password", "--dbname", input.sourceDatabase],
    toolEnv(input.source, input.sourceDatabase),
    {
      secrets: [],
    },
  );
  const restore = startTool(
    tools.pgRestore,
    ["--no-owner", "--no-acl", "--exit-on-error", "--no-password", "--dbname", input.targetDatabase],
    toolEnv(input.target, input.targetDatabase),
    { secrets: [input.target.password], keepStdout: true },
  );
  const kill = () => {
    dump.kill();
    restore.kill();
  };
  input.signal.addEventListener("abort", kill, { once: true });
  try {
    // pg_restore stopping early (--exit-on-error) must not leave pg_dump blocked on a full pipe.
    restore.stdin.once("close", () => dump.stdout.resume());
    dump.stdout.pipe(restore.stdin);
    const [dumpExit, restoreExit] = await Promise.all([dump.exited, restore.exited]);
    if (input.signal.aborted) throw new WorkerFailure("transient", "The copy out of the recovery instance was interrupted.");
    // Its failure first: "the database did not exist" says more than pg_dump's exit does.
    const rowCounts = await counting;
    const restoreReport = restore.report(restoreExit);
    if (dumpExit.code !== 0) {
      const rep = dump.report(dumpExit, "");
      throw input.failed(`pg_dump of the recovered database failed: ${firstErrorLine(rep.stderr) || `exit ${dumpExit.code ?? dumpExit.signal}`}`, rep);
    }
    await checkRestored({
      conn: input.target,
      database: input.targetDatabase,
      expectedRowCounts: rowCounts,
      fail: input.failed,
      exit: restoreExit,
      report: restoreReport,
    });
    return { rowCounts, report: restoreReport, ms: Date.now() - started };
  } finally {
    input.signal.removeEventListener("abort", kill);
    kill();
    await Promise.all([dump.exited, restore.exited]);
    if (!restore.stdin.destroyed) restore.stdin.destroy();
  }
}
