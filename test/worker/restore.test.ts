import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackupForWork } from "../../core/backups/backups.ts";
import { runTick } from "../../core/dispatch/handler.ts";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { keys } from "../../core/db/keys.ts";
import { getLock } from "../../core/jobs/locks.ts";
import { body, expectShape } from "../support/spec.ts";
import { postBackup, runQueueUntilSettled } from "./support.ts";

let env: TestEnv;
let tenant: Tenant;
let key: string;
let backupKey: string;
/** Each table's row hash in the source at the backup's snapshot. */
let atSnapshot: Record<string, string>;

/** md5 over every row of every ordinary table (rows as text, sorted): equal hashes, equal contents. */
async function rowHashes(client: pg.Client): Promise<Record<string, string>> {
  const { rows: tables } = await client.query<{ t: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  );
  const out: Record<string, string> = {};
  for (const { t } of tables) {
    const { rows } = await client.query<{ h: string; n: string }>(
      `SELECT md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS h, count(*) AS n FROM ${t} x`,
    );
    out[t] = `${rows[0]!.n}:${rows[0]!.h}`;
  }
  return out;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Connecting as `url`'s role to `database`: the error message, or "connected". */
async function tryConnect(url: string, database: string): Promise<string> {
  const u = new URL(url);
  u.pathname = `/${database}`;
  try {
    await withClient(u.toString(), async () => undefined);
    return "connected";
  } catch (err) {
    return String((err as Error).message);
  }
}

const call = async (method: string, path: string, payload?: unknown) => {
  const res = await env.app().request(path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(payload !== undefined ? { "content-type": "application/json" } : {}) },
    body: payload !== undefined ? JSON.stringify(payload) : undefined,
  });
  return { status: res.status, body: await body(res) };
};

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant(); // the demo shop
  key = await tenant.key(["backups:read", "backups:write", "jobs:read", "projects:read", "projects:write", "credentials:read"]);
  const job = await postBackup(env, tenant, { label: "restore-source" });
  const [settled] = await runQueueUntilSettled(env.deps, [job.id]);
  expect(settled?.state, JSON.stringify(settled)).toBe("completed");
  const backup = (await getBackupForWork(env.deps, tenant.projectId, settled!.backup_id!))!;
  backupKey = backup.backup_key;
  atSnapshot = await withClient(env.pgUrl(tenant.database), rowHashes);
  // The source moves on after the backup: the restore must show the snapshot, not today's rows.
  await env.query(tenant.database, "INSERT INTO customers (email, name) VALUES ('late@example.com', 'Late'); DELETE FROM order_items WHERE order_id < 50");
}, 180_000);
afterAll(async () => env?.cleanup());

async function dbExists(name: string) {
  return (await env.query("postgres", "SELECT 1 FROM pg_database WHERE datname = $1", [name])).length > 0;
}
async function roleExists(name: string) {
  return (await env.query("postgres", "SELECT 1 FROM pg_roles WHERE rolname = $1", [name])).length > 0;
}

describe("restoring a backup into a new preview", () => {
  let previewId: string;
  let url: string;

  it("202s a project.restore job; the worker makes a ready preview whose every table equals the source at the snapshot", async () => {
    const res = await call("POST", `/v1/projects/${tenant.projectId}/restores`, { backup_key: backupKey, preview_name: "before-migration", ttl_hours: 2 });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(Object.keys(res.body)).toEqual(["job"]);
    expectShape("Job", res.body.job, expect);
    expect(res.body.job).toMatchObject({ type: "project.restore", state: "pending", project_id: tenant.projectId });
    previewId = res.body.job.preview_database_id;
    expect(previewId).toMatch(/^pvw_/);

    const provisioning = await call("GET", `/v1/preview-databases/${previewId}`);
    expect(provisioning.body.preview).toMatchObject({ state: "provisioning", mode: "clone", name: "before-migration" });

    const [done] = await runQueueUntilSettled(env.deps, [res.body.job.id]);
    expect(done?.state, JSON.stringify(done)).toBe("completed");
    expect(done?.last_exit_code).toBe(0);

    const got = await call("GET", `/v1/preview-databases/${previewId}`);
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    expectShape("Preview", got.body.preview, expect);
    expect(got.body.preview).toMatchObject({
      state: "ready",
      last_error: null,
      source_kind: "backup",
      source_backup_key: backupKey,
      project_id: tenant.projectId,
    });

    const conn = await call("GET", `/v1/preview-databases/${previewId}/connections`);
    expect(conn.status, JSON.stringify(conn.body)).toBe(200);
    expectShape("Connections", conn.body.connections, expect);
    expect(conn.body.connections.pooled_url).toBeNull();
    url = conn.body.connections.direct_url;
    expect(new URL(url).username).toBe(conn.body.connections.username);
    expect(new URL(url).pathname).toBe(`/${got.body.preview.database_name}`);

    // The contents, table by table, as the source held them at the backup's snapshot.
    const restored = await withClient(url, rowHashes);
    expect(Object.keys(restored).length).toBeGreaterThanOrEqual(4);
    expect(restored).toEqual(atSnapshot);
    // Every object belongs to the preview's role (pg_restore --no-owner as that role).
    const owners = await withClient(url, async (c) =>
      (
        await c.query<{ owner: string }>(
          "SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
        )
      ).rows.map((r) => r.owner),
    );
    expect(owners).toEqual([conn.body.connections.username]);
    // The lock on the preview's database is released.
    expect(await getLock(env.deps, done!.locked_resource!)).toBeUndefined();
    expect(done!.locked_resource).toContain(got.body.preview.database_name);
  }, 120_000);

  it("the preview's role reaches its preview only: not the project's database, not another preview", async () => {
    expect(await tryConnect(url, tenant.database)).toMatch(/permission denied for database/);
    const other = await call("POST", `/v1/projects/${tenant.projectId}/preview-databases`, { name: "scratch", mode: "empty" });
    expect(other.status, JSON.stringify(other.body)).toBe(202);
    expectShape("Preview", other.body.preview, expect);
    expect(other.body.job).toMatchObject({ type: "branch.create", preview_database_id: other.body.preview.id });
    const [made] = await runQueueUntilSettled(env.deps, [other.body.job.id]);
    expect(made?.state, JSON.stringify(made)).toBe("completed");
    expect(await tryConnect(url, other.body.preview.database_name)).toMatch(/permission denied for database/);
    const otherUrl = (await call("GET", `/v1/preview-databases/${other.body.preview.id}/connections`)).body.connections.direct_url;
    expect(await tryConnect(otherUrl, new URL(url).pathname.slice(1))).toMatch(/permission denied for database/);
    expect(await tryConnect(otherUrl, other.body.preview.database_name)).toBe("connected");
    // The empty preview is empty, and its role cannot create databases or roles.
    const tables = await withClient(otherUrl, async (c) => (await c.query("SELECT 1 FROM pg_tables WHERE schemaname = 'public'")).rows.length);
    expect(tables).toBe(0);
    const power = await withClient(
      otherUrl,
      async (c) => (await c.query("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user")).rows[0],
    );
    expect(power).toEqual({ rolsuper: false, rolcreatedb: false, rolcreaterole: false });
  }, 120_000);

  it("a restore into that preview replaces what it holds: in place by default, dropping and recreating the database with recreate", async () => {
    // What a user did in the preview since: a table of their own, rows deleted.
    await withClient(url, (c) => c.query("CREATE TABLE scribble (x int); DELETE FROM order_items"));
    const databaseOid = () =>
      withClient(url, async (c) => (await c.query<{ oid: string }>("SELECT oid::text FROM pg_database WHERE datname = current_database()")).rows[0]!.oid);
    const oidBefore = await databaseOid();
    const res = await call("POST", `/v1/projects/${tenant.projectId}/restores`, { backup_key: backupKey, target_kind: "preview", preview_id: previewId });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.job).toMatchObject({ type: "project.restore", preview_database_id: previewId });
    expect((await call("GET", `/v1/preview-databases/${previewId}`)).body.preview.state).toBe("resetting");
    const [done] = await runQueueUntilSettled(env.deps, [res.body.job.id]);
    expect(done?.state, JSON.stringify(done)).toBe("completed");
    expect((await call("GET", `/v1/preview-databases/${previewId}`)).body.preview).toMatchObject({
      state: "ready",
      source_kind: "backup",
      source_backup_key: backupKey,
      last_error: null,
    });
    expect(await withClient(url, rowHashes)).toEqual(atSnapshot); // scribble is gone, order_items are back
    expect(await databaseOid()).toBe(oidBefore); // the same database, emptied in place
    // The role still reaches its preview only.
    expect(await tryConnect(url, tenant.database)).toMatch(/permission denied for database/);

    await withClient(url, (c) => c.query("CREATE TABLE scribble (x int)"));
    const recreated = await call("POST", `/v1/projects/${tenant.projectId}/restores`, {
      backup_key: backupKey,
      target_kind: "preview",
      preview_id: previewId,
      recreate: true,
    });
    expect(recreated.status, JSON.stringify(recreated.body)).toBe(202);
    const [again] = await runQueueUntilSettled(env.deps, [recreated.body.job.id]);
    expect(again?.state, JSON.stringify(again)).toBe("completed");
    expect(await withClient(url, rowHashes)).toEqual(atSnapshot);
    expect(await databaseOid()).not.toBe(oidBefore); // dropped and created again
  }, 180_000);

  it("DELETE drops the database and the role; the preview is listed as deleted", async () => {
    const before = (await call("GET", `/v1/preview-databases/${previewId}`)).body.preview;
    const res = await call("DELETE", `/v1/preview-databases/${previewId}`);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.job).toMatchObject({ type: "instance.destroy", preview_database_id: previewId });
    const [done] = await runQueueUntilSettled(env.deps, [res.body.job.id]);
    expect(done?.state, JSON.stringify(done)).toBe("completed");
    expect(await dbExists(before.database_name)).toBe(false);
    expect(await roleExists(before.database_name)).toBe(false);
    const list = await call("GET", `/v1/projects/${tenant.projectId}/preview-databases`);
    expect(list.status).toBe(200);
    expect(list.body.preview_databases.find((p: { id: string }) => p.id === previewId)).toMatchObject({ state: "deleted" });
    const again = await call("DELETE", `/v1/preview-databases/${previewId}`);
    expect(again.status).toBe(409);
  }, 120_000);
});

describe("expiry", () => {
  it("the dispatcher deletes a preview past expires_at, database and role", async () => {
    const res = await call("POST", `/v1/projects/${tenant.projectId}/preview-databases`, { name: "short-lived", mode: "clone", ttl_hours: 1 });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.preview).toMatchObject({
      mode: "clone",
      source_kind: "backup",
      source_backup_key: expect.stringMatching(/^projects\/prj_\w+\/backups\/bkp_\w+\.dump$/),
    });
    await runQueueUntilSettled(env.deps, [res.body.job.id]);
    const preview = (await call("GET", `/v1/preview-databases/${res.body.preview.id}`)).body.preview;
    expect(preview.state).toBe("ready");
    expect(await dbExists(preview.database_name)).toBe(true);

    // Not yet due: nothing happens.
    const early = await runTick(env.deps);
    expect(early.previews?.jobIds).toEqual([]);
    // Time passes (the stored expiry moves into the past, as the index reads it).
    const past = new Date(Date.now() - 60_000).toISOString().replace(/\.\d{3}Z$/, "Z");
    await env.deps.ddb.send(
      new UpdateCommand({
        TableName: env.deps.table,
        Key: keys.preview(preview.id),
        UpdateExpression: "SET expires_at = :e, gsi2sk = :s",
        ExpressionAttributeValues: { ":e": past, ":s": `${past}#${preview.id}` },
      }),
    );
    const late = await runTick(env.deps);
    expect(late.errors).toEqual([]);
    expect(late.previews?.deleted).toBe(1);
    const [deletion] = await runQueueUntilSettled(env.deps, late.previews!.jobIds);
    expect(deletion).toMatchObject({ type: "instance.destroy", preview_database_id: preview.id, state: "completed" });
    expect((await call("GET", `/v1/preview-databases/${preview.id}`)).body.preview.state).toBe("deleted");
    expect(await dbExists(preview.database_name)).toBe(false);
    expect(await roleExists(preview.database_name)).toBe(false);
  }, 120_000);
});
