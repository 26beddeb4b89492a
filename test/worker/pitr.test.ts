import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getClusterConnection } from "../../core/orgs/orgs.ts";
import { getWalFile, listSegments } from "../../core/wal/archive.ts";
import { WorkerFailure } from "../../core/pg/classify.ts";
import { restoreDatabaseToTime } from "../../core/wal/recover.ts";
import { startArchivedCluster, type ArchivedCluster } from "../pg/archived-cluster.ts";
import { publishArchive } from "../pg/publish-archive.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { createApproval } from "../../core/approvals/approvals.ts";
import { keys } from "../../core/db/keys.ts";
import { getProject } from "../../core/orgs/orgs.ts";
import { storedEvents } from "../support/events.ts";
import { body } from "../support/spec.ts";
import { fastOptions, runQueueUntilSettled } from "./support.ts";

/**
 * The point-in-time restore's data path on the archive's storage contract: base backup and WAL
 * read from S3 through core/wal (checksums checked), replayed in a recovery instance, one
 * database copied into another database.
 */
let env: TestEnv;
let src: ArchivedCluster;
let tenant: Tenant;
let workRoot: string;
let commits: Date[] = [];

beforeAll(async () => {
  env = await createTestEnv();
  workRoot = mkdtempSync(join(tmpdir(), "capydb-pitr-work-"));
  src = await startArchivedCluster();
  await src.query("postgres", "CREATE DATABASE app");
  await src.query("app", "CREATE TABLE ledger (id int PRIMARY KEY, at timestamptz NOT NULL)");
  const tar = await src.baseBackup();
  for (let id = 1; id <= 20; id++) {
    await src.query("app", "INSERT INTO ledger VALUES ($1, clock_timestamp())", [id]);
    await new Promise((r) => setTimeout(r, 100));
  }
  const rows = await src.query<{ at: string }>("app", "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))::text AS at FROM ledger ORDER BY id");
  commits = rows.map((r) => new Date(Number(r.at) * 1000));
  await src.query("app", "CREATE TABLE after_targets (x int)");
  tenant = await env.seedTenant({ clusterUrl: src.server.url.replace(/\/postgres$/, "/postgres?sslmode=disable"), database: "app" });
  await publishArchive(env.deps, src, tenant.clusterId, [tar]);
}, 180_000);

afterAll(async () => {
  await src?.stop();
  await env?.cleanup();
  rmSync(workRoot, { recursive: true, force: true });
});

const between = (k: number) => new Date((commits[k - 1]!.getTime() + commits[k]!.getTime()) / 2);

async function restoreInto(k: number, signal = new AbortController().signal) {
  const cluster = await getClusterConnection(env.deps, tenant.clusterId);
  const into = `pitr_${k}_${Date.now()}`;
  await src.query("postgres", `CREATE DATABASE ${into}`);
  const result = await restoreDatabaseToTime({
    deps: env.deps,
    clusterId: tenant.clusterId,
    cluster,
    database: "app",
    time: between(k),
    into: cluster,
    intoDatabase: into,
    signal,
    archiveWaitSeconds: 1,
    workRoot,
  });
  return { result, into };
}

describe("restoreDatabaseToTime", () => {
  it("restores the rows committed at or before the time, from the archive in S3", async () => {
    for (const k of [4, 15]) {
      const { result, into } = await restoreInto(k);
      expect(result.rowCounts["public.ledger"]).toBe(k);
      expect(result.walSegments).toBeGreaterThan(0);
      const rows = await src.query<{ n: string; max: number }>(into, "SELECT count(*) AS n, max(id) AS max FROM ledger");
      expect(rows[0]).toEqual({ n: String(k), max: k });
    }
    expect(readdirSync(workRoot)).toEqual([]);
  }, 180_000);

  it("fails with a clear error when a WAL object replay needs was changed in S3, and leaves nothing behind", async () => {
    // The newest finished or partial segment holds the ledger's commits.
    const segs = await listSegments(env.deps, tenant.clusterId);
    const last = segs.at(-1)!;
    const original = await env.deps.s3.send(new GetObjectCommand({ Bucket: env.deps.bucket, Key: last.key }));
    const bytes = Buffer.from(await original.Body!.transformToByteArray());
    const changed = Buffer.from(bytes);
    changed[changed.length - 20] = changed[changed.length - 20]! ^ 0xff;
    await env.deps.s3.send(new PutObjectCommand({ Bucket: env.deps.bucket, Key: last.key, Body: changed }));
    try {
      const err = await restoreInto(10).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkerFailure);
      expect((err as WorkerFailure).classification).toBe("permanent");
      expect((err as Error).message).toContain(`archived object ${last.key} is corrupt`);
      expect(readdirSync(workRoot)).toEqual([]);
    } finally {
      await env.deps.s3.send(new PutObjectCommand({ Bucket: env.deps.bucket, Key: last.key, Body: bytes }));
    }
    expect(await getWalFile(env.deps, tenant.clusterId, last.name)).toBeDefined();
  }, 120_000);
});

describe("a point-in-time restore into the project", () => {
  it("goes through the approval, the safety backup and the swap; the project's database then holds the rows of that time", async () => {
    await env.deps.ddb.send(
      new UpdateCommand({
        TableName: env.deps.table,
        Key: keys.project(tenant.projectId),
        UpdateExpression: "SET environment = :e",
        ExpressionAttributeValues: { ":e": "non_production" },
      }),
    );
    const project = (await getProject(env.deps, tenant.projectId))!;
    const { token } = await createApproval(env.deps, { project, action: "project.restore_overwrite", actor: { kind: "operator", id: "test" } });
    const at = between(7).toISOString();
    const res = await env.app().request(`/v1/projects/${tenant.projectId}/restores`, {
      method: "POST",
      headers: { authorization: `Bearer ${await tenant.key()}`, "content-type": "application/json" },
      body: JSON.stringify({ restore_time: at, target_kind: "project", approval_token: token }),
    });
    const answer = await body(res);
    expect(res.status, JSON.stringify(answer)).toBe(202);
    const [job] = await runQueueUntilSettled(env.deps, [answer.job.id], { ...fastOptions, pitrArchiveWaitSeconds: 1 }, 240_000);
    expect(job, JSON.stringify(job)).toMatchObject({ state: "completed" });
    expect(job!.last_stdout).toMatch(new RegExp(`app as of ${at} restored into a hidden database`));
    const rows = await src.query<{ n: string; max: number }>("app", "SELECT count(*) AS n, max(id) AS max FROM ledger");
    expect(rows[0]).toEqual({ n: "7", max: 7 });
    const events = await storedEvents(env.deps, { type: "restore.completed" });
    const done = events.find((e) => (e.event.data as { job_id?: string }).job_id === job!.id);
    expect(done?.event.data).toMatchObject({ target_kind: "project", source_kind: "pitr", restore_time: at });
    // The worker's recovery instance (default directory) is gone.
    const left = (() => {
      try {
        return readdirSync(join(tmpdir(), "capydb-recovery")).filter((d) => d.startsWith(`r-${process.pid}-`));
      } catch {
        return [];
      }
    })();
    expect(left).toEqual([]);
  }, 300_000);
});
