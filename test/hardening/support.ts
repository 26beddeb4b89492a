import { uniq, type TestEnv } from "../support/env.ts";
import { ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { DeleteQueueCommand } from "@aws-sdk/client-sqs";
import type { InitializeMiddleware, MetadataBearer } from "@smithy/types";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { getBackupForWork, type BackupWorkItem } from "../../core/backups/backups.ts";
import { createAwsClients } from "../../core/aws/clients.ts";
import { getJobItem, type JobItem } from "../../core/jobs/jobs.ts";
import { getLock } from "../../core/jobs/locks.ts";
import { storedEvents } from "../support/events.ts";
import type { Deps } from "../../core/deps.ts";
import { pickPgTools } from "../../core/pg/pgtools.ts";
import { ensureQueues } from "../../local/resources.ts";
import { LOCAL_REGION } from "../../local/stack.ts";
import { listKeys, objectBytes, sha256 } from "../worker/support.ts";

/**
 * The canary: the password of the database role every hardening test backs up with. It must
 * appear in no log line, no API response, no stored item and no queue message.
 */
export const CANARY = "Canary-pw-7f3e9b21d4c8a6";
export const CANARY_ROLE = "capydb_canary";

/**
 * Creates the canary role (a superuser: it dumps every table and creates the throwaway database)
 * on the shared test cluster, once, whichever file gets there first. Returns its cluster URL.
 */
export async function canaryClusterUrl(env: TestEnv): Promise<string> {
  await env.query("postgres", `CREATE ROLE ${CANARY_ROLE} LOGIN SUPERUSER PASSWORD '${CANARY}'`).catch((err: { code?: string }) => {
    // Another file created it meanwhile (duplicate_object, or the catalog's unique index).
    if (err.code !== "42710" && err.code !== "23505") throw err;
  });
  const url = new URL(env.infra.postgresUrl);
  url.username = CANARY_ROLE;
  url.password = CANARY;
  return url.toString();
}

/** Every item of the file's table (a test may scan; the service never does). */
export async function scanTable(deps: Pick<Deps, "ddb" | "table">): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const res = await deps.ddb.send(new ScanCommand({ TableName: deps.table, ExclusiveStartKey: start }));
    items.push(...(res.Items ?? []));
    start = res.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Multipart uploads still open under `prefix` (an aborted or completed upload is not listed). */
export async function openUploads(deps: Pick<Deps, "s3" | "bucket">, prefix: string): Promise<string[]> {
  const res = await deps.s3.send(new ListMultipartUploadsCommand({ Bucket: deps.bucket, Prefix: prefix }));
  return (res.Uploads ?? []).map((u) => u.UploadId!);
}

/** Throwaway (verification) databases left on the shared cluster for these backups. */
export async function throwawaysLeft(env: TestEnv, backupIds: string[]): Promise<string[]> {
  const rows = await env.query<{ datname: string }>("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'capydb_verify_%'");
  // One per attempt: capydb_verify_<backup>_<attempt>.
  const names = backupIds.map((id) => `capydb_verify_${id.replace(/^bkp_/, "")}`);
  return rows.map((r) => r.datname).filter((n) => names.some((base) => n === base || n.startsWith(`${base}_`)));
}

/** An AWS SDK error as a 5xx from the service looks (the SDK's own retries are above it, so they see it too). */
export const serviceError = (name: string, status = 503) =>
  Object.assign(new Error(`${name} (injected)`), { name, $fault: "server", $metadata: { httpStatusCode: status } });

type Fault = (commandName: string, input: Record<string, unknown>) => Error | undefined;

/**
 * Fresh AWS clients on the stand-ins whose calls go through `fault` first: a returned error is
 * thrown instead of sending the call. Added at the `initialize` step, above the SDK's retry, so
 * one injected failure is one failed operation, exactly what the worker's own code must handle.
 */
export function faultyClients(env: TestEnv, fault: Fault): Pick<Deps, "ddb" | "s3"> {
  const { ddb, s3 } = createAwsClients({ region: LOCAL_REGION, endpoint: env.infra.endpoint });
  const middleware =
    <I extends object, O extends MetadataBearer>(): InitializeMiddleware<I, O> =>
    (next, context) =>
    async (args) => {
      const err = fault(String(context.commandName), args.input as Record<string, unknown>);
      if (err) throw err;
      return next(args);
    };
  const options = { step: "initialize", name: "hardeningFault", priority: "high" } as const;
  ddb.middlewareStack.add(middleware(), options);
  s3.middlewareStack.add(middleware(), options);
  return { ddb, s3 };
}

/**
 * A PostgreSQL "installation" (the layout CAPYDB_PG_BIN_DIRS expects) whose pg_dump and
 * pg_restore are shell wrappers around the real tools: `$REAL` is the real binary, `"$@"` its
 * arguments. A wrapper left out is a plain link to the real tool.
 */
export async function wrappedInstallation(dir: string, wrappers: { pg_dump?: string; pg_restore?: string }): Promise<string> {
  const real = await pickPgTools({ major: 15, text: "15" }, []);
  const bin = join(dir, String(real.major), "bin");
  mkdirSync(bin, { recursive: true });
  const tools = { pg_dump: real.pgDump, pg_restore: real.pgRestore };
  for (const [name, path] of Object.entries(tools)) {
    const body = wrappers[name as keyof typeof wrappers];
    if (!body) {
      symlinkSync(path, join(bin, name));
      continue;
    }
    // --version answers like the real tool so that tool selection is unchanged.
    writeFileSync(join(bin, name), `#!/bin/bash\nREAL="${path}"\ncase "$1" in --version|-V) exec "$REAL" "$@";; esac\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  return dir;
}

/** Runs `capydb-admin` (the operator CLI) against the file's table, queue and bucket. */
export function adminCli(env: TestEnv, args: string[]) {
  const res = spawnSync(process.execPath, ["--import", "tsx", "cli/admin.ts", ...args], {
    encoding: "utf8",
    env: {
      ...process.env,
      AWS_REGION: LOCAL_REGION,
      CAPYDB_AWS_ENDPOINT: env.infra.endpoint,
      CAPYDB_TABLE: env.names.table,
      CAPYDB_QUEUE_URL: env.deps.queueUrl,
      CAPYDB_DLQ_URL: env.dlqUrl,
      CAPYDB_BUCKET: env.names.bucket,
      CAPYDB_SECRET_KEY: env.infra.secretKey,
    },
  });
  if (res.status !== 0) throw new Error(`capydb-admin ${args.join(" ")} exited ${res.status}: ${res.stderr}`);
  return JSON.parse(res.stdout) as unknown;
}

/** Fails the test with every place the canary shows up. */
export function canarySightings(where: string, texts: Iterable<string>): string[] {
  const out: string[] = [];
  for (const t of texts) if (t.includes(CANARY)) out.push(`${where}: ${t.slice(0, 300)}`);
  return out;
}

/**
 * What a fault must leave behind once the job is done: the job completed and its backup completed
 * and verified (the two agree), one `backup.completed` event, exactly one object under the
 * project (the backup's, with the recorded checksum), no open multipart upload, no lock, no
 * throwaway database.
 */
export async function expectCleanCompletion(env: TestEnv, deps: Deps, jobId: string): Promise<{ job: JobItem; backup: BackupWorkItem }> {
  const job = await getJobItem(deps, jobId);
  expect(job, JSON.stringify(job)).toMatchObject({ state: "completed", error: null });
  const backup = await getBackupForWork(deps, job!.project_id, job!.backup_id!);
  expect(backup, JSON.stringify(backup)).toMatchObject({ state: "completed", verification_state: "verified", verification_error: null, job_id: jobId });
  expect(backup!.upload_id ?? null).toBeNull();
  const prefix = `projects/${job!.project_id}/`;
  expect(await listKeys(deps, prefix)).toEqual([backup!.backup_key]);
  expect(sha256(await objectBytes(deps, backup!.backup_key))).toBe(backup!.sha256);
  expect(await openUploads(deps, prefix)).toEqual([]);
  expect(await getLock(deps, job!.locked_resource!)).toBeUndefined();
  expect((await storedEvents(deps, { type: "backup.completed", field: "backup_id", value: backup!.id })).map((e) => e.event.data)).toEqual([
    expect.objectContaining({ backup_id: backup!.id, size_bytes: backup!.size_bytes }),
  ]);
  expect(await storedEvents(deps, { type: "job.completed", field: "job_id", value: jobId })).toHaveLength(1);
  expect(await throwawaysLeft(env, [backup!.id])).toEqual([]);
  return { job: job!, backup: backup! };
}

/**
 * The file's environment moved onto a queue pair of its own with these redrive settings (short
 * visibility, small maxReceiveCount): the API enqueues there and workers poll there.
 */
export async function onOwnQueues(env: TestEnv, opts: { maxReceiveCount?: number; visibilityTimeoutSeconds?: number }): Promise<TestEnv> {
  const queues = await ensureQueues(env.deps.sqs, uniq("q"), opts);
  const deps: Deps = { ...env.deps, ...queues };
  return {
    ...env,
    deps,
    dlqUrl: queues.dlqUrl,
    app: (o = {}) => env.app({ deps, ...o }),
    async cleanup() {
      for (const url of [queues.queueUrl, queues.dlqUrl]) await deps.sqs.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => undefined);
      await env.cleanup();
    },
  };
}
