import { createTestEnv, type TestEnv } from "../support/env.ts";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { createWorkerHandler } from "../../core/worker/handler.ts";
import { startPostgres, type PostgresServer } from "../../local/postgres.ts";
import { startWorkerLoop } from "../../local/loops.ts";
import { freePort } from "../../local/wait.ts";
import { backupOf, fastOptions, isSettled, postBackup, waitFor } from "./support.ts";

// This file stops and starts a PostgreSQL cluster of its own: the shared one serves other files.
let env: TestEnv;
let dir: string;
let server: PostgresServer | undefined;
let settings: { dataDir: string; port: number; password: string };

beforeAll(async () => {
  env = await createTestEnv();
  dir = mkdtempSync(join(tmpdir(), "capydb-restart-"));
  chmodSync(dir, 0o755); // the postgres user must reach its data directory
  settings = { dataDir: join(dir, "data"), port: await freePort(), password: randomBytes(12).toString("hex") };
  server = await startPostgres(settings);
});
afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await env?.cleanup();
});

describe("PostgreSQL restarts within the retry window", () => {
  it("fails the first attempt as transient, retries after a backoff, and completes", async () => {
    // prepare: a small database on our own cluster
    const admin = new pg.Client({ connectionString: server!.url });
    await admin.connect();
    await admin.query("CREATE DATABASE shop");
    await admin.end();
    const url = new URL(server!.url);
    url.pathname = "/shop";
    const shop = new pg.Client({ connectionString: url.toString() });
    await shop.connect();
    await shop.query("CREATE TABLE items (id serial PRIMARY KEY, name text); INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 500) g");
    await shop.end();
    const tenant = await env.seedTenant({ clusterUrl: server!.url, database: "shop" });
    const job = await postBackup(env, tenant);

    // act: the server goes away, the worker fails once, the server comes back
    await server!.stop();
    server = undefined;
    const loop = startWorkerLoop(env.deps, createWorkerHandler(env.deps, { ...fastOptions, retryBaseSeconds: 3 }), { waitSeconds: 1 });
    try {
      const failedOnce = await waitFor("the first attempt to fail", async () => {
        const j = await getJobItem(env.deps, job.id);
        return j && j.attempts === 1 && j.state === "pending" && j.retry_classification === "transient" ? j : undefined;
      });
      expect(failedOnce.error).toMatch(/Could not reach the database server/);
      server = await startPostgres(settings);
      await waitFor("the job to settle", async () => isSettled(await getJobItem(env.deps, job.id)));
    } finally {
      await loop.stop();
    }

    // assess
    const settled = await getJobItem(env.deps, job.id);
    // The first attempt's failure is not the job's outcome: no classification, no error once completed.
    expect(settled, JSON.stringify(settled)).toMatchObject({ state: "completed", error: null, retry_classification: null });
    expect(settled!.attempts).toBeGreaterThanOrEqual(2);
    const backup = await backupOf(env.deps, settled!);
    expect(backup).toMatchObject({ state: "completed", verification_state: "verified", row_counts: { "public.items": 500 } });
  });
});
