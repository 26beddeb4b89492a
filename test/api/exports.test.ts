import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listProjectAuditEvents } from "../../core/audit/audit.ts";
import { getExport } from "../../core/exports/exports.ts";
import { DEFAULT_COMPRESS_LEVEL } from "../../core/pg/dump.ts";
import { pickPgTools } from "../../core/pg/pgtools.ts";
import { tick } from "../dispatch/support.ts";
import { securityMatrix } from "../support/security.ts";
import { body, expectShape } from "../support/spec.ts";
import { libpqEnv, listKeys, objectExists, postBackup, runQueueUntilSettled, runTool, sha256 } from "../worker/support.ts";

/**
 * Exports end to end on real parts: the worker's pg_dump into the local S3, the signed URL fetched
 * by curl over HTTP, pg_restore into a fresh database, the dispatcher's tick expiring them.
 */
let env: TestEnv;
let tenant: Tenant;
let key: string;
let dir: string;
const auth = (k = key) => ({ authorization: `Bearer ${k}` });
const DAY = 86_400_000;

const postExport = async (t: Tenant = tenant, k = key) => {
  const res = await env.app().request(`/v1/projects/${t.projectId}/exports`, { method: "POST", headers: auth(k) });
  const b = await body(res);
  expect(res.status, JSON.stringify(b)).toBe(202);
  return b as { export_id: string; job: { id: string; type: string; state: string } };
};
const listExports = async (t: Tenant = tenant, k = key) => {
  const res = await env.app().request(`/v1/projects/${t.projectId}/exports`, { headers: auth(k) });
  const b = await body(res);
  expect(res.status, JSON.stringify(b)).toBe(200);
  return b.exports as Record<string, unknown>[];
};
const download = (projectId: string, exportId: string, k = key) =>
  env.app().request(`/v1/projects/${projectId}/exports/${exportId}/download`, { headers: auth(k) });

/** Every table's row count and an md5 over its rows, in a stable order: equal fingerprints, equal data. */
async function fingerprint(db: string): Promise<Record<string, { rows: number; md5: string }>> {
  const tables = await env.query<{ t: string }>(
    db,
    "SELECT quote_ident(table_name) AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
  );
  const out: Record<string, { rows: number; md5: string }> = {};
  for (const { t } of tables) {
    const [r] = await env.query<{ rows: string; md5: string }>(
      db,
      `SELECT count(*) AS rows, md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS md5 FROM ${t} x`,
    );
    out[t] = { rows: Number(r!.rows), md5: r!.md5 };
  }
  return out;
}

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant(); // the demo shop: FKs, an index, a sequence, a view, a few MB
  key = await tenant.key();
  dir = mkdtempSync(join(tmpdir(), "capydb-exp-"));
});
afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await env?.cleanup();
});

describe("exports", () => {
  it("POST -> a project.export job -> completed; the signed URL downloads with curl and restores with pg_restore into a database with the source's rows", async () => {
    // act
    const created = await postExport();
    expect(created.export_id).toMatch(/^exp_[0-9a-z]{26}$/);
    expectShape("Job", created.job, expect);
    expect(created.job).toMatchObject({ type: "project.export", state: "pending", locked_resource: `database:${tenant.clusterId}/${tenant.database}` });
    const pending = await listExports();
    expect(pending).toHaveLength(1);
    expectShape("Export", pending[0], expect);
    expect(pending[0]).toMatchObject({ id: created.export_id, state: "pending", size_bytes: 0, project_id: tenant.projectId, database_name: tenant.database });
    const [job] = await runQueueUntilSettled(env.deps, [created.job.id]);

    // assess: job and listing
    expect(job?.state, JSON.stringify(job)).toBe("completed");
    expect(job?.last_exit_code).toBe(0);
    const [listed] = await listExports();
    expectShape("Export", listed, expect);
    expect(listed).toMatchObject({ id: created.export_id, state: "completed" });
    expect(listed!.size_bytes as number).toBeGreaterThan(100_000);
    // Kept 7 days (the default setting) from its creation.
    expect(Date.parse(listed!.expires_at as string) - Date.parse(listed!.created_at as string)).toBe(7 * DAY);

    // Its own key prefix; and it is not a backup.
    expect(await listKeys(env.deps, `exports/${tenant.projectId}/`)).toEqual([`exports/${tenant.projectId}/${created.export_id}.dump`]);
    expect(await listKeys(env.deps, `projects/${tenant.projectId}/backups/`)).toEqual([]);
    const backups = await body(await env.app().request(`/v1/projects/${tenant.projectId}/backups`, { headers: auth() }));
    expect(backups).toEqual({ backups: [] });

    // download with plain curl
    const res = await download(tenant.projectId, created.export_id);
    const d = await body(res);
    expect(res.status, JSON.stringify(d)).toBe(200);
    expectShape("Download", d.download, expect);
    expect(d.download.size_bytes).toBe(listed!.size_bytes);
    expect(new URL(d.download.download_url).origin).toBe(env.infra.endpoint);
    expect(new URL(d.download.download_url).searchParams.get("X-Amz-Expires")).toBe("900");
    const file = join(dir, "export.dump");
    const curl = spawnSync("curl", ["-sS", "--fail", "-o", file, d.download.download_url], { encoding: "utf8" });
    expect(curl.status, curl.stderr).toBe(0);
    const bytes = readFileSync(file);
    expect(bytes.length).toBe(d.download.size_bytes);
    expect(sha256(bytes)).toBe(d.download.sha256);

    // restore it into a fresh database, as a customer would at home
    const target = await env.createDatabase({ prefix: "home" });
    const tools = await pickPgTools({ major: 15, text: "15" }, env.deps.pgBinDirs);
    const restored = await runTool(
      tools.pgRestore,
      ["--no-owner", "--no-privileges", "--exit-on-error", "-d", target, file],
      libpqEnv(env.infra.postgresUrl, target),
    );
    expect(restored.code, restored.stderr).toBe(0);
    // pg_dump's own compressed format, though the worker compressed it (pg_dump ran uncompressed)
    const list = await runTool(tools.pgRestore, ["--list", file], libpqEnv(env.infra.postgresUrl, target));
    expect(list.stdout).toMatch(new RegExp(`Compression: ${DEFAULT_COMPRESS_LEVEL}\\b[\\s\\S]*Format: CUSTOM`));
    expect(DEFAULT_COMPRESS_LEVEL).toBeGreaterThan(0);
    const source = await fingerprint(tenant.database);
    expect(Object.keys(source).length).toBeGreaterThanOrEqual(4);
    expect(await fingerprint(target)).toEqual(source);
    // The trail says who asked for the copy and who took a link to it.
    const trail = (await listProjectAuditEvents(env.deps, tenant.projectId, 50)).items.filter((e) => e.target_id === created.export_id);
    expect(trail.map((e) => e.action).sort()).toEqual(["export.download_url_issued", "export.requested"]);
    for (const e of trail) expect(e).toMatchObject({ actor_kind: "api_key", target_type: "export", organization_id: tenant.organizationId });
    expect(JSON.stringify(trail)).not.toContain("X-Amz-Signature"); // the URL itself is a credential: never stored

    const [seq] = await env.query<{ last_value: string }>(target, "SELECT last_value FROM invoice_number_seq");
    const [srcSeq] = await env.query<{ last_value: string }>(tenant.database, "SELECT last_value FROM invoice_number_seq");
    expect(seq?.last_value).toBe(srcSeq?.last_value);
  }, 120_000);

  it("is a 409 saying why for a pending export and a failed one", async () => {
    const queued = await postExport();
    const p = await download(tenant.projectId, queued.export_id);
    const pb = await body(p);
    expect(p.status, JSON.stringify(pb)).toBe(409);
    expect(pb.error).toMatch(/is pending: it can be downloaded once it has completed/);

    const broken = await env.seedTenant({ database: "no_such_export_db" });
    const brokenKey = await broken.key();
    const failedExport = await postExport(broken, brokenKey);
    const [job] = await runQueueUntilSettled(env.deps, [queued.job.id, failedExport.job.id]);
    expect(job?.state).toBe("completed");
    const [failed] = await listExports(broken, brokenKey);
    expect(failed).toMatchObject({ id: failedExport.export_id, state: "failed", size_bytes: 0 });
    const f = await download(broken.projectId, failedExport.export_id, brokenKey);
    const fb = await body(f);
    expect(f.status, JSON.stringify(fb)).toBe(409);
    expect(fb.error).toMatch(/failed, so there is nothing to download: The database "no_such_export_db" does not exist/);
    // Nothing is left in storage for a failed export.
    expect(await listKeys(env.deps, `exports/${broken.projectId}/`)).toEqual([]);
  }, 120_000);

  it("is a 404 for another organization's export, another project's, an unknown or malformed id", async () => {
    const [mine] = await listExports();
    const other = await env.seedTenant({ database: "unused_exp_other" });
    const otherKey = await other.key();
    const cases: [string, string, string][] = [
      [tenant.projectId, mine!.id as string, otherKey],
      [other.projectId, mine!.id as string, otherKey],
      [tenant.projectId, "exp_01jzzzzzzzzzzzzzzzzzzzzzzz", key],
      [tenant.projectId, "bkp_01jzzzzzzzzzzzzzzzzzzzzzzz", key],
    ];
    for (const [projectId, exportId, k] of cases) {
      const res = await download(projectId, exportId, k);
      const b = await body(res);
      expect(res.status, `${projectId}/${exportId}: ${JSON.stringify(b)}`).toBe(404);
      expect(Object.keys(b)).toEqual(["error"]);
    }
    const list = await env.app().request(`/v1/projects/${tenant.projectId}/exports`, { headers: auth(otherKey) });
    expect(list.status).toBe(404);
  });

  it("refuses a completed export past expires_at that the dispatcher has not swept yet", async () => {
    const [done] = (await listExports()).filter((x) => x.state === "completed");
    const later = env.app({ deps: { ...env.deps, now: () => new Date(Date.parse(done!.expires_at as string) + 1000) } });
    const res = await later.request(`/v1/projects/${tenant.projectId}/exports/${done!.id as string}/download`, { headers: auth() });
    const b = await body(res);
    expect(res.status, JSON.stringify(b)).toBe(409);
    expect(b.error).toMatch(/expired at .*: request a new export/);
  });

  it("each route refuses what every route refuses, with its scope", async () => {
    const sibling = await env.seedTenant({ database: "unused_exp_sib" });
    const other = await env.seedTenant({ database: "unused_exp_oth" });
    const sib = { ...sibling, organizationId: tenant.organizationId };
    const [done] = (await listExports()).filter((e) => e.state === "completed");
    const fixtures = { tenant, sibling: sib, other, jobId: "", siblingJobId: "" };
    await securityMatrix(env, { name: "export list", method: "GET", path: (p) => `/v1/projects/${p}/exports`, scope: "backups:read", ok: 200 }, fixtures);
    await securityMatrix(
      env,
      { name: "export download", method: "GET", path: (p) => `/v1/projects/${p}/exports/${done!.id as string}/download`, scope: "backups:read", ok: 200 },
      fixtures,
    );
    await securityMatrix(env, { name: "export create", method: "POST", path: (p) => `/v1/projects/${p}/exports`, scope: "backups:write", ok: 202 }, fixtures);
  });
});

describe("export retention", () => {
  it("deletes exports past their retention and lists them expired; the backups and their retention are unaffected", async () => {
    // prepare: a fresh project with two backups kept 1 day, then an export (newer than both)
    const t = await env.seedTenant();
    const k = await t.key();
    const b1 = await postBackup(env, t, { label: "b1", retention_days: 1 });
    const b2 = await postBackup(env, t, { label: "b2", retention_days: 1 });
    const e = await postExport(t, k);
    await runQueueUntilSettled(env.deps, [b1.id, b2.id, e.job.id]);
    const exp = (await getExport(env.deps, t.projectId, e.export_id))!;
    expect(exp.state).toBe("completed");
    expect(await objectExists(env.deps, exp.export_key)).toBe(true);

    // act: a tick after the backups' expiry, before the export's
    const early = await tick(env, new Date(Date.now() + 2 * DAY));
    expect(early.exports).toMatchObject({ deleted: 0 });
    // assess: backups' retention is decided among backups: the older expired, the newer kept by
    // the safety rule (the newer, completed export does not count as a verified backup)
    const backups = (await body(await env.app().request(`/v1/projects/${t.projectId}/backups`, { headers: auth(k) }))).backups;
    expect(backups.map((b: { label: string; state: string }) => [b.label, b.state])).toEqual([
      ["b2", "completed"],
      ["b1", "expired"],
    ]);
    expect((await getExport(env.deps, t.projectId, e.export_id))?.state).toBe("completed");

    // act: a tick past the export's 7 days
    const late = await tick(env, new Date(Date.now() + 8 * DAY));
    // (Every completed export of this file's table is past its 7 days by then.)
    expect(late.exports?.failed).toBe(0);
    expect(late.exports?.read).toBeGreaterThanOrEqual(1);
    expect(late.exports?.deleted).toBe(late.exports?.read);

    // assess: gone from storage, listed as expired, download refused; the kept backup untouched
    expect(await objectExists(env.deps, exp.export_key)).toBe(false);
    const [listed] = await listExports(t, k);
    expect(listed).toMatchObject({ id: e.export_id, state: "expired" });
    const res = await download(t.projectId, e.export_id, k);
    const b = await body(res);
    expect(res.status, JSON.stringify(b)).toBe(409);
    expect(b.error).toMatch(/expired at .* and its dump was deleted: request a new export/);
    const after = (await body(await env.app().request(`/v1/projects/${t.projectId}/backups`, { headers: auth(k) }))).backups;
    expect(after.map((x: { label: string; state: string }) => [x.label, x.state])).toEqual([
      ["b2", "completed"],
      ["b1", "expired"],
    ]);
    // A second tick finds nothing more to do.
    expect((await tick(env, new Date(Date.now() + 9 * DAY))).exports).toMatchObject({ read: 0, deleted: 0 });
  }, 180_000);
});
