import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getClusterConnection } from "../../core/orgs/orgs.ts";
import { getWalFile, listSegments } from "../../core/wal/archive.ts";
import { WorkerFailure } from "../../core/worker/classify.ts";
import { restoreDatabaseToTime } from "../../core/worker/pitr.ts";
import { startArchivedCluster, type ArchivedCluster } from "../pg/archived-cluster.ts";
import { publishArchive } from "../pg/publish-archive.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";

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
