import { createTestEnv, type TestEnv } from "../support/env.ts";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackupForWork } from "../../core/backups/backups.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { runJob } from "../../core/worker/run.ts";
import { startPostgres, type PostgresServer } from "../../local/postgres.ts";
import { freePort } from "../../local/wait.ts";
import { CapturingLogger, fastOptions, FILLER_OVER_ONE_PART, postBackup, runQueueUntilSettled, smallDatabase, waitFor } from "../worker/support.ts";
import { CANARY, canaryClusterUrl, canarySightings, expectCleanCompletion, scanTable, throwawaysLeft, wrappedInstallation } from "./support.ts";

const logLines: string[] = [];
const childOutput: string[] = [];
let env: TestEnv;
let dir: string;
let clusterUrl: string;
const children: ChildProcess[] = [];
beforeAll(async () => {
  env = await createTestEnv({ log: new CapturingLogger(logLines) });
  dir = mkdtempSync(join(tmpdir(), "capydb-hardening-"));
  chmodSync(dir, 0o755); // the postgres user must reach a data directory below it
  clusterUrl = await canaryClusterUrl(env);
});
afterAll(async () => {
  for (const c of children) {
    try {
      if (c.pid) process.kill(-c.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  expect(canarySightings("log", logLines)).toEqual([]);
  expect(canarySightings("worker process output", childOutput)).toEqual([]);
  expect(
    canarySightings(
      "item",
      (await scanTable(env.deps)).map((i) => JSON.stringify(i)),
    ),
  ).toEqual([]);
  rmSync(dir, { recursive: true, force: true });
  await env?.cleanup();
});

/** Starts test/worker/fixtures/crash-worker.ts on `jobId` in its own process group, with these PostgreSQL tools. */
function startWorkerProcess(jobId: string, pgBinDir: string): ChildProcess {
  const child = spawn(join(process.cwd(), "node_modules", ".bin", "tsx"), [join("test", "worker", "fixtures", "crash-worker.ts")], {
    detached: true, // its own process group: tsx, node, the tools and their wrappers die together
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: `${join(process.cwd(), "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
      AWS_REGION: "us-east-1",
      CAPYDB_AWS_ENDPOINT: env.infra.endpoint,
      CAPYDB_TABLE: env.names.table,
      CAPYDB_QUEUE_URL: env.deps.queueUrl,
      CAPYDB_BUCKET: env.names.bucket,
      CAPYDB_SECRET_KEY: env.infra.secretKey,
      CAPYDB_PG_BIN_DIRS: pgBinDir,
      CAPYDB_WORKER_ID: "doomed-worker",
      LOG_LEVEL: "DEBUG",
      JOB_ID: jobId,
      LEASE_MS: "4000",
      HEARTBEAT_MS: "1000",
    },
  });
  const out = (d: Buffer) => childOutput.push(d.toString());
  child.stdout?.on("data", out);
  child.stderr?.on("data", out);
  children.push(child);
  return child;
}

/**
 * Where the doomed worker is when it is killed. The wrappers make it stop there (the real tool
 * has started, and then nothing moves) and touch a mark file when it has got there.
 */
const phases = {
  // The dump's output stops after 2 kB and its stream never ends: nothing is uploaded yet.
  dump: (mark: string) => ({ pg_dump: `"$REAL" "$@" | { head -c 2000; touch "${mark}"; exec sleep 300; }` }),
  // The whole dump is written out (over one 8 MiB part, compressed) and pg_dump never exits: a part is in flight.
  upload: (mark: string) => ({ pg_dump: `"$REAL" "$@" --compress=0\ntouch "${mark}"\nexec sleep 300` }),
  // The artifact is stored, the throwaway database created, and pg_restore never finishes.
  verification: (mark: string) => ({ pg_restore: `touch "${mark}"\nexec sleep 300` }),
};

describe("a worker killed mid-job", () => {
  let big: string;
  beforeAll(async () => {
    big = await env.createDatabase({ prefix: "kill" });
    await env.query(big, FILLER_OVER_ONE_PART);
  });

  it.each(Object.keys(phases) as (keyof typeof phases)[])(
    "during the %s: the job completes later, one backup, no lock, partial object or throwaway database left",
    async (phase) => {
      // prepare
      const tenant = await env.seedTenant({ database: phase === "upload" ? big : await smallDatabase(env, 100), clusterUrl });
      const job = await postBackup(env, tenant);
      const mark = join(dir, `${phase}.mark`);
      const tools = await wrappedInstallation(join(dir, `pg-${phase}`), phases[phase](mark));

      // act 1: the doomed worker gets to the phase
      const child = startWorkerProcess(job.id, tools);
      await waitFor(
        `the worker to reach the ${phase}`,
        async () => {
          if (child.exitCode !== null) throw new Error(`the worker exited early: ${childOutput.join("")}`);
          return existsSync(mark);
        },
        40_000,
      );
      const backupId = (await getJobItem(env.deps, job.id))!.backup_id!;
      if (phase === "upload") {
        await waitFor("a part in flight", async () => (await getBackupForWork(env.deps, tenant.projectId, backupId))?.upload_id);
      }
      if (phase === "verification") expect(await throwawaysLeft(env, [backupId])).toHaveLength(1);
      expect(await getJobItem(env.deps, job.id)).toMatchObject({ state: "running", claimed_by: "doomed-worker", attempts: 1 });

      // act 2: kill -9; once its lease lapses, another worker takes the job over
      process.kill(-child.pid!, "SIGKILL");
      await waitFor("the lease to lapse", async () => {
        const j = await getJobItem(env.deps, job.id);
        return j && Date.parse(j.lease_expires_at ?? "") + 1000 < Date.now();
      });
      const outcome = await runJob(env.deps, job.id, undefined, fastOptions);

      // assess
      expect(outcome).toMatchObject({ status: "completed", ack: true });
      const { job: done } = await expectCleanCompletion(env, env.deps, job.id);
      expect(done).toMatchObject({ attempts: 2, claimed_by: env.deps.workerId });
    },
    90_000,
  );
});

describe("the PostgreSQL cluster restarted mid-dump", () => {
  let server: PostgresServer | undefined;
  let settings: { dataDir: string; port: number; password: string };
  beforeAll(async () => {
    // A cluster of our own (the shared one serves other files), the canary its superuser's password.
    settings = { dataDir: join(dir, "pgdata"), port: await freePort(), password: CANARY };
    server = await startPostgres(settings);
  });
  afterAll(async () => server?.stop());

  it("fails the attempt as transient and completes on the retry, with counts from a consistent snapshot", async () => {
    // prepare: ~10 MB of rows, a pg_dump that stops reading after 200 kB the first time, until the restart is over
    const sql = async (database: string, text: string) => {
      const url = new URL(server!.url);
      url.pathname = `/${database}`;
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      await client.query(text).finally(() => client.end());
    };
    await sql("postgres", "CREATE DATABASE shop");
    await sql(
      "shop",
      "CREATE TABLE items (id int PRIMARY KEY, payload text); INSERT INTO items SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 150000) g",
    );
    const mark = join(dir, "restart.mark");
    const resume = join(dir, "restart.resume");
    const tools = await wrappedInstallation(join(dir, "pg-restart"), {
      pg_dump: [
        `if [ -e "${mark}" ]; then exec "$REAL" "$@"; fi`,
        "set -o pipefail",
        `"$REAL" "$@" --compress=0 | { head -c 200000; touch "${mark}"; while [ ! -e "${resume}" ]; do sleep 0.1; done; cat; }`,
      ].join("\n"),
    });
    const tenant = await env.seedTenant({ clusterUrl: server!.url, database: "shop" });
    const job = await postBackup(env, tenant);

    // act: the cluster restarts while pg_dump is in the middle of the table
    const settled = runQueueUntilSettled({ ...env.deps, pgBinDirs: [tools] }, [job.id], { ...fastOptions, retryBaseSeconds: 2 });
    await waitFor("pg_dump to be mid-table", async () => existsSync(mark));
    await server!.stop();
    server = await startPostgres(settings);
    writeFileSync(resume, "");
    await settled;

    // assess: one transient failure, then a clean completion
    const { job: done, backup } = await expectCleanCompletion(env, env.deps, job.id);
    expect(done.attempts).toBe(2);
    // Completed on its retry: the job no longer reports the failed attempt's classification; the log does.
    expect(done.retry_classification).toBeNull();
    expect(backup.row_counts).toEqual({ "public.items": 150000 });
    const retried = logLines.find((l) => l.includes(job.id) && l.includes("will retry"));
    expect(retried, "the first attempt failed and was retried").toBeDefined();
    expect(JSON.parse(retried!).classification).toBe("transient");
  }, 90_000);
});
