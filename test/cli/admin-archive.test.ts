/**
 * `capydb-admin archive` as an operator runs it (a child process on the store), against a real
 * archive: its own PostgreSQL, pg_receivewal and pg_basebackup driven by an archiver in this
 * process, DynamoDB Local and the S3 stand-in.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../core/ids.ts";
import { createCluster } from "../../core/orgs/orgs.ts";
import { putBaseBackup, putGap, restorableWindow } from "../../core/wal/archive.ts";
import { startArchiver } from "../../core/wal/archiver.ts";
import { startPostgres, type PostgresServer } from "../../local/postgres.ts";
import { freePort, waitFor } from "../../local/wait.ts";
import { createTestEnv, uniq, type TestEnv } from "../support/env.ts";
import { fakeArchive } from "../support/fake-archive.ts";

let env: TestEnv;
let server: PostgresServer;
let clusterId: string;
let archiver: ReturnType<typeof startArchiver> | undefined;
const dir = mkdtempSync(join(tmpdir(), "capydb-admin-archive-"));

beforeAll(async () => {
  env = await createTestEnv();
  server = await startPostgres({
    dataDir: join(dir, "pg"),
    port: await freePort(),
    password: randomBytes(12).toString("hex"),
    settings: { wal_level: "replica" },
  });
  clusterId = (await createCluster(env.deps, { name: uniq("cls"), url: `${server.url}?sslmode=disable`, insecure_tls: true })).id;
});
afterAll(async () => {
  await archiver?.stop();
  await server?.stop();
  await env?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function admin(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string; json: () => any }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "cli/admin.ts", ...args], {
      env: { ...process.env, ...env.serviceEnv() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
}

describe("capydb-admin archive", () => {
  it("enable turns archiving on; status shows the live archive; base-backup --wait takes one on demand", async () => {
    const enabled = await admin(["archive", "enable", "--cluster", clusterId, "--window-days", "14"]);
    expect(enabled.status, enabled.stderr).toBe(0);
    expect(enabled.json()).toMatchObject({ cluster_id: clusterId, enabled: true, window_days: 14, base_backup_reason: "initial" });

    archiver = startArchiver(env.deps, {
      receiver: { spoolDir: join(dir, "spool"), tickMs: 300, partialIntervalMs: 1_000, restartDelayMs: 500 },
      scanMs: 500,
      retentionMs: 3_600_000,
      scratchDir: dir,
    });
    await waitFor(async () => (await restorableWindow(env.deps, clusterId)).available, { timeoutMs: 90_000, what: "the window to open" });

    const status = await admin(["archive", "status", "--cluster", clusterId]);
    expect(status.status, status.stderr).toBe(0);
    const [h] = status.json().archives;
    expect(h).toMatchObject({
      cluster_id: clusterId,
      enabled: true,
      window_days: 14,
      base_backup_failing: false,
      last_base_backup_failure: null,
      open_gaps: [],
    });
    expect(h.latest_segment.name).toMatch(/^[0-9A-F]{24}$/);
    expect(h.lag_seconds).toBeLessThanOrEqual(30);
    expect(h.slot.retained_bytes).toBeGreaterThanOrEqual(0);
    expect(h.newest_verified_base_backup.id).toMatch(/^bbk_/);
    expect(h.window.available).toBe(true);
    const first = h.newest_verified_base_backup.id;

    const bb = await admin(["archive", "base-backup", "--cluster", clusterId, "--wait", "--wait-timeout", "120"]);
    expect(bb.status, bb.stderr).toBe(0);
    const taken = bb.json().base_backup;
    expect(taken).toMatchObject({ cluster_id: clusterId, state: "completed", trigger: "operator" });
    expect(taken.id).not.toBe(first);
    expect(taken.verified_at).not.toBeNull();

    const table = await admin(["archive", "status", "-o", "table"]);
    expect(table.status, table.stderr).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^Cluster:\\s+${clusterId}$`, "m"));
    expect(table.stdout).toMatch(/^Archiving:\s+on$/m);
    expect(table.stdout).toMatch(new RegExp(`^Base backup:\\s+${taken.id} finished`, "m"));
    expect(table.stdout).toMatch(/^Open gaps:\s+none$/m);
  });

  it("status names an open gap and a failing base backup (injected in the index)", async () => {
    const sick = (await createCluster(env.deps, { name: uniq("sick"), url: "postgres://u:p@127.0.0.1:1/postgres?sslmode=disable", insecure_tls: true })).id;
    const t0 = Date.now() - 40 * 60_000;
    await fakeArchive(env, sick, t0);
    // A gap after the newest base backup (none closes it), then a base backup that failed.
    await putGap(env.deps, {
      item_type: "wal_gap",
      id: newId("walGap", new Date()),
      cluster_id: sick,
      reason: "corrupt",
      timeline: 1,
      from_lsn: "0/9000000",
      to_lsn: "0/A000000",
      from: new Date(t0 + 30 * 60_000).toISOString(),
      to: null,
      segments: ["000000010000000000000009"],
      detail: "archived object is corrupt",
      detected_at: new Date().toISOString(),
    });
    const failedId = newId("baseBackup", new Date());
    await putBaseBackup(env.deps, {
      item_type: "base_backup",
      id: failedId,
      cluster_id: sick,
      state: "failed",
      trigger: "after_gap",
      timeline: null,
      start_lsn: null,
      end_lsn: null,
      start_segment: null,
      started_at: new Date().toISOString(),
      finished_at: new Date().toISOString(),
      verified_at: null,
      key: "basebackups/x/base.tar.gz",
      manifest_key: "basebackups/x/backup_manifest",
      compression: "gzip",
      sha256: null,
      size_bytes: null,
      raw_bytes: null,
      duration_ms: 1000,
      error: "pg_basebackup failed (exit 1): could not connect",
      worker_id: null,
      updated_at: new Date().toISOString(),
    });

    const status = await admin(["archive", "status", "--cluster", sick]);
    expect(status.status, status.stderr).toBe(0);
    const [h] = status.json().archives;
    expect(h.base_backup_failing).toBe(true);
    expect(h.last_base_backup_failure).toMatchObject({ id: failedId, error: "pg_basebackup failed (exit 1): could not connect" });
    expect(h.open_gaps).toEqual([expect.objectContaining({ reason: "corrupt", from_lsn: "0/9000000", to_lsn: "0/A000000" })]);
    expect(h.lag_seconds).toBeGreaterThanOrEqual(9 * 60);

    const table = await admin(["archive", "status", "--cluster", sick, "-o", "table"]);
    expect(table.stdout).toMatch(new RegExp(`^Base backup failure:\\s+${failedId} at .* \\(FAILING\\): pg_basebackup failed`, "m"));
    expect(table.stdout).toMatch(/^Open gaps:\s+corrupt 0\/9000000\.\.0\/A000000 since /m);
  });

  it("refuses a cluster without an archive by name (exit 2), and bad numbers", async () => {
    const none = await admin(["archive", "status", "--cluster", "cls_01m8bbd943485gy3g6c722w2d4"]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/cluster cls_01m8bbd943485gy3g6c722w2d4 has no WAL archive/);
    const bb = await admin(["archive", "base-backup", "--cluster", "cls_01m8bbd943485gy3g6c722w2d4"]);
    expect(bb.status).toBe(2);
    expect(bb.stderr).toMatch(/has no WAL archive/);
    const bad = await admin(["archive", "enable", "--cluster", clusterId, "--window-days", "0"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--window-days/);
  });
});
