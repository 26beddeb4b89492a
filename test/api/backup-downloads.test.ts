import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackup } from "../../core/backups/backups.ts";
import { DOWNLOAD_TTL_SECONDS } from "../../core/downloads/downloads.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { tick } from "../dispatch/support.ts";
import { securityMatrix } from "../support/security.ts";
import { body, expectShape } from "../support/spec.ts";
import { objectBytes, postBackup, runQueueUntilSettled, sha256 } from "../worker/support.ts";

/**
 * Signed downloads of backups, on real parts: backups made by the worker (pg_dump into the local
 * S3), the URL fetched with a plain `curl -o` over HTTP, retention run by the dispatcher's tick.
 */
let env: TestEnv;
let tenant: Tenant;
let key: string;
let dir: string;
/** Completed and verified by the worker; the older one then expired by retention. */
let expiredId: string;
let completedId: string;
let failedId: string;
let pendingId: string;
let tenantOfFailed: Tenant;

const download = (projectId: string, backupId: string, apiKey = key) =>
  env.app().request(`/v1/projects/${projectId}/backups/${backupId}/download`, { headers: { authorization: `Bearer ${apiKey}` } });

const backupIdOf = async (jobId: string): Promise<string> => (await getJobItem(env.deps, jobId))!.backup_id!;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant();
  key = await tenant.key();
  dir = mkdtempSync(join(tmpdir(), "capydb-dl-"));

  // Two backups kept 1 day, both completed; a tick two days later expires the older one (the
  // newer, the project's newest verified backup, is kept by the safety rule).
  const first = await postBackup(env, tenant, { label: "old", retention_days: 1 });
  await runQueueUntilSettled(env.deps, [first.id]);
  const second = await postBackup(env, tenant, { label: "new", retention_days: 1 });
  await runQueueUntilSettled(env.deps, [second.id]);
  expiredId = await backupIdOf(first.id);
  completedId = await backupIdOf(second.id);
  await tick(env, new Date(Date.now() + 2 * 86_400_000));

  // A backup of a database that does not exist fails for good (permanent: missing database).
  const broken = await env.seedTenant({ database: "no_such_database_here" });
  const brokenJob = await postBackup(env, broken);
  const [settled] = await runQueueUntilSettled(env.deps, [brokenJob.id]);
  expect(settled?.state, JSON.stringify(settled)).toBe("failed");
  failedId = await backupIdOf(brokenJob.id);
  tenantOfFailed = broken;

  // Requested, never run (no worker loop).
  pendingId = await backupIdOf((await postBackup(env, tenant, { label: "queued" })).id);
}, 240_000);

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await env?.cleanup();
});

describe("GET /v1/projects/{projectID}/backups/{backupID}/download", () => {
  it("answers a signed URL that plain `curl -o` downloads, with the size and SHA-256 of the backup", async () => {
    // act
    const res = await download(tenant.projectId, completedId);
    const b = await body(res);
    // assess
    expect(res.status, JSON.stringify(b)).toBe(200);
    expect(Object.keys(b)).toEqual(["download"]);
    expectShape("Download", b.download, expect);
    const backup = (await getBackup(env.deps, tenant.projectId, completedId))!;
    expect(backup.state).toBe("completed");
    expect(b.download.size_bytes).toBe(backup.size_bytes);
    expect(b.download.sha256).toBe(backup.sha256);

    // Locally the URL points at the local S3 endpoint (the one AWS endpoint of the stand-ins).
    const url = new URL(b.download.download_url);
    expect(url.origin).toBe(env.infra.endpoint);
    expect(decodeURIComponent(url.pathname)).toBe(`/${env.names.bucket}/${backup.backup_key}`);

    // A real HTTP GET, without credentials, by curl.
    const file = join(dir, "backup.dump");
    const curl = spawnSync("curl", ["-sS", "--fail", "-o", file, b.download.download_url], { encoding: "utf8" });
    expect(curl.status, curl.stderr).toBe(0);
    const bytes = readFileSync(file);
    expect(bytes.length).toBe(b.download.size_bytes);
    expect(sha256(bytes)).toBe(b.download.sha256);
    expect(bytes.equals(await objectBytes(env.deps, backup.backup_key))).toBe(true);
    expect(bytes.subarray(0, 5).toString()).toBe("PGDMP"); // a pg_dump custom-format archive
  });

  it("signs for 15 minutes: X-Amz-Expires=900 and a signature, and expires_at = X-Amz-Date + 900 s", async () => {
    // The local S3 stand-in (fauxqs) checks neither signatures nor expiry, so an expired URL still
    // works here: what this test can prove is that the URL S3 receives carries a SigV4 query
    // signature that AWS S3 refuses after 900 seconds.
    const before = Date.now();
    const res = await download(tenant.projectId, completedId);
    const b = await body(res);
    expect(res.status, JSON.stringify(b)).toBe(200);
    const q = new URL(b.download.download_url).searchParams;
    expect(DOWNLOAD_TTL_SECONDS).toBe(900);
    expect(q.get("X-Amz-Algorithm")).toBe("AWS4-HMAC-SHA256");
    expect(q.get("X-Amz-Expires")).toBe("900");
    expect(q.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(q.get("X-Amz-SignedHeaders")).toBe("host");
    expect(q.get("X-Amz-Credential")).toMatch(/^local\/\d{8}\/us-east-1\/s3\/aws4_request$/);
    const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(q.get("X-Amz-Date") ?? "")!;
    expect(m).not.toBeNull();
    const signedAt = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
    expect(signedAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(Date.parse(b.download.expires_at)).toBe(signedAt + 900_000);
    // The browser saves it under the backup's id.
    expect(q.get("response-content-disposition")).toBe(`attachment; filename="${completedId}.dump"`);
  });

  it("is a 409 saying why for a pending, a failed and an expired backup", async () => {
    const cases: [string, string, RegExp][] = [
      [tenant.projectId, pendingId, /is pending: it can be downloaded once it has completed/],
      [tenantOfFailed.projectId, failedId, /failed, so there is nothing to download: .*does not exist/],
      [tenant.projectId, expiredId, /expired \(retention\) and its dump was deleted/],
    ];
    expect((await getBackup(env.deps, tenant.projectId, expiredId))?.state).toBe("expired");
    for (const [projectId, backupId, why] of cases) {
      const apiKey = projectId === tenant.projectId ? key : await tenantOfFailed.key();
      const res = await download(projectId, backupId, apiKey);
      const b = await body(res);
      expect(res.status, JSON.stringify(b)).toBe(409);
      expect(Object.keys(b)).toEqual(["error"]);
      expect(b.error).toMatch(why);
    }
  });

  it("keeps the project's newest verified backup downloadable past its expiry (the safety rule keeps its dump)", async () => {
    const backup = (await getBackup(env.deps, tenant.projectId, completedId))!;
    expect(Date.parse(backup.expires_at)).toBeLessThan(Date.now() + 2 * 86_400_000);
    const res = await download(tenant.projectId, completedId);
    expect(res.status, await res.clone().text()).toBe(200);
  });

  it("is a 404 for another organization's backup, another project's backup, an unknown or malformed id", async () => {
    const other = await env.seedTenant({ database: "unused_other" });
    const otherKey = await other.key();
    const cases: [string, string, string][] = [
      [tenant.projectId, completedId, otherKey], // another organization's key on our project
      [other.projectId, completedId, otherKey], // our backup under their project
      [tenant.projectId, failedId, key], // a sibling organization's backup under our project
      [tenant.projectId, "bkp_01jzzzzzzzzzzzzzzzzzzzzzzz", key],
      [tenant.projectId, "not-a-backup-id", key],
    ];
    for (const [projectId, backupId, apiKey] of cases) {
      const res = await download(projectId, backupId, apiKey);
      const b = await body(res);
      expect(res.status, `${projectId}/${backupId}: ${JSON.stringify(b)}`).toBe(404);
      expect(Object.keys(b)).toEqual(["error"]);
    }
  });

  it("needs backups:read, and refuses what every route refuses", async () => {
    const sibling = await env.seedTenant({ database: "unused_sibling" });
    const other = await env.seedTenant({ database: "unused_other2" });
    // Sibling: another project of the same organization.
    const sib = { ...sibling, organizationId: tenant.organizationId };
    await securityMatrix(
      env,
      {
        name: "backup download",
        method: "GET",
        path: (projectId) => `/v1/projects/${projectId}/backups/${completedId}/download`,
        scope: "backups:read",
        ok: 200,
      },
      { tenant, sibling: sib, other, jobId: "", siblingJobId: "" },
    );
  });
});
