import "../support/env.ts";
import type { Tenant, TestEnv } from "../support/env.ts";
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { Logger, type LogItem } from "@aws-lambda-powertools/logger";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { expect } from "vitest";
import { getBackupForWork, type BackupWorkItem } from "../../core/backups/backups.ts";
import type { Deps } from "../../core/deps.ts";
import { getJobItem, type JobItem } from "../../core/jobs/jobs.ts";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import type { WorkerOptions } from "../../core/worker/options.ts";
import { startWorkerLoop } from "../../local/loops.ts";

/** Seconds instead of minutes: short leases, backoffs and busy-lock delays. */
export const fastOptions: Partial<WorkerOptions> = {
  leaseMs: 15_000,
  heartbeatMs: 2_000,
  visibilityMarginSeconds: 2,
  retryBaseSeconds: 1,
  retryMaxSeconds: 10,
  lockBusyDelaySeconds: 1,
};

/** A Powertools Logger that keeps every line (and its children's) in `lines` instead of printing. */
export class CapturingLogger extends Logger {
  constructor(
    readonly lines: string[],
    options: ConstructorParameters<typeof Logger>[0] = { serviceName: "capydb-backups", logLevel: "DEBUG" },
  ) {
    super(options);
  }
  protected override printLog(_level: number, log: LogItem): void {
    log.prepareForPrint();
    this.lines.push(JSON.stringify(log.getAttributes()));
  }
  protected override createLogger(options?: ConstructorParameters<typeof Logger>[0]): Logger {
    return new CapturingLogger(this.lines, options);
  }
}

/** A small database: two tables with a foreign key, a sequence, a view, a few hundred rows. */
export async function smallDatabase(env: TestEnv, rows = 200): Promise<string> {
  const db = await env.createDatabase({ prefix: "wk" });
  await env.query(
    db,
    `CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL);
     CREATE TABLE books (id serial PRIMARY KEY, author_id int NOT NULL REFERENCES authors(id), title text NOT NULL);
     CREATE VIEW author_books AS SELECT a.name, count(b.*) AS n FROM authors a LEFT JOIN books b ON b.author_id = a.id GROUP BY a.name;
     INSERT INTO authors (name) SELECT 'author ' || g FROM generate_series(1, ${rows}) g;
     INSERT INTO books (author_id, title) SELECT 1 + g % ${rows}, 'book ' || g FROM generate_series(1, ${rows * 3}) g;`,
  );
  return db;
}

export async function postBackup(env: TestEnv, tenant: Tenant, body: Record<string, unknown> = {}): Promise<JobItem> {
  const key = await tenant.key();
  const res = await env.app().request(`/v1/projects/${tenant.projectId}/backups`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { job: JobItem };
  expect(res.status, JSON.stringify(json)).toBe(202);
  return json.job;
}

export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export const isSettled = (j: JobItem | undefined) => j?.state === "completed" || j?.state === "failed";

/**
 * Runs the local stack's worker loop (the same handler Lambda uses) until every job in `jobIds`
 * is completed or failed.
 */
export async function runQueueUntilSettled(
  deps: Deps,
  jobIds: string[],
  options: Partial<WorkerOptions> = fastOptions,
  timeoutMs = 90_000,
): Promise<JobItem[]> {
  const loop = startWorkerLoop(deps, createWorkerHandler(deps, options), { concurrency: 2, batchSize: 5, waitSeconds: 1 });
  try {
    return await waitFor(
      `jobs ${jobIds.join(", ")} to settle`,
      async () => {
        const jobs = await Promise.all(jobIds.map((id) => getJobItem(deps, id)));
        return jobs.every(isSettled) ? (jobs as JobItem[]) : undefined;
      },
      timeoutMs,
    );
  } finally {
    await loop.stop();
  }
}

export async function backupOf(deps: Deps, job: JobItem): Promise<BackupWorkItem> {
  const b = await getBackupForWork(deps, job.project_id, job.backup_id!);
  expect(b).toBeDefined();
  return b!;
}

export async function objectBytes(deps: Deps, key: string): Promise<Buffer> {
  const res = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export async function objectExists(deps: Deps, key: string): Promise<boolean> {
  try {
    await deps.s3.send(new HeadObjectCommand({ Bucket: deps.bucket, Key: key }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}

export async function listKeys(deps: Deps, prefix: string): Promise<string[]> {
  const res = await deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!);
}

/** Runs a tool without a shell; resolves with its exit code and output. */
export function runTool(
  path: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  stdin?: Buffer | Readable,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.on("error", () => undefined);
    if (Buffer.isBuffer(stdin)) child.stdin.end(stdin);
    else if (stdin) (stdin as Readable).pipe(child.stdin);
    else child.stdin.end();
  });
}

/** libpq environment for the test cluster's superuser, from its URL. */
export function libpqEnv(url: string, database: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return {
    PATH: process.env.PATH,
    LC_ALL: "C",
    PGHOST: u.hostname,
    PGPORT: u.port,
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: database,
  };
}

/**
 * A table whose dump is larger than one 8 MiB upload part even once the worker has compressed it
 * (two md5s in hex per row: about 29 MB of COPY text, about 2:1 compressible), for the tests that
 * need a part in flight.
 */
export const FILLER_OVER_ONE_PART =
  "CREATE TABLE filler (id int PRIMARY KEY, payload text); INSERT INTO filler SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 400000) g";
