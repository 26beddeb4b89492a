import { createTestEnv, type TestEnv } from "../support/env.ts";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClusterConnection } from "../../core/pg/pgconn.ts";
import { createClosedDatabase, databasesOpenToPublic, openDatabase } from "../../core/pg/isolation.ts";
import { createPreviewDatabase, ensurePreviewRole } from "../../core/previews/database.ts";
import { throwawayDatabaseName } from "../../core/pg/scratch.ts";
import { createThrowaway } from "../../core/pg/verify.ts";
import { startPostgres, type PostgresServer } from "../../local/postgres.ts";
import { freePort } from "../../local/wait.ts";

/**
 * A shared cluster of its own (the suite's shared server holds every other test's databases): two
 * tenants' databases, a preview of each, and a verification scratch database of the second. The
 * first preview's role, whose password a customer holds, must reach its own database and nothing
 * else on the cluster.
 */
let env: TestEnv;
let server: PostgresServer;
let dir: string;
let conn: ClusterConnection;
beforeAll(async () => {
  env = await createTestEnv();
  dir = mkdtempSync(join(tmpdir(), "capydb-isolation-"));
  chmodSync(dir, 0o755); // as root, PostgreSQL runs as the postgres user
  server = await startPostgres({ dataDir: join(dir, "pg"), port: await freePort(), password: "isolation-test" });
  conn = { host: "127.0.0.1", port: server.port, user: server.user, password: server.password, adminDatabase: "postgres", sslmode: null, insecureTls: true };
}, 120_000);
afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await env?.cleanup();
});

async function asAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Connects as `user` to `database`: "ok", or the server's refusal. */
async function tryConnect(user: string, password: string, database: string): Promise<string> {
  const c = new pg.Client({ host: "127.0.0.1", port: server.port, user, password, database, connectionTimeoutMillis: 10_000 });
  c.on("error", () => undefined);
  try {
    await c.connect();
    return "ok";
  } catch (err) {
    return (err as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

const admin = (args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", "cli/admin.ts", ...args], { encoding: "utf8", env: { ...process.env, ...env.serviceEnv() } });

describe("tenants apart on a shared cluster", { timeout: 120_000 }, () => {
  it("capydb-admin cluster add closes postgres and the templates, and refuses while a tenant's database is open to PUBLIC", async () => {
    await asAdmin(async (c) => {
      for (const db of ["tenant_a", "tenant_b"]) await c.query(`CREATE DATABASE ${db}`); // as customers make them: open to PUBLIC
      expect(await databasesOpenToPublic(c)).toEqual(["postgres", "template1", "tenant_a", "tenant_b"]);
    });
    const refused = admin(["cluster", "add", "--name", "shared-1", "--url", server.url, "--insecure-tls"]);
    expect(refused.status, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/^capydb-admin: a preview role could connect to "tenant_a", "tenant_b" on this cluster .*--pg-hba-isolated/);
    expect(refused.stdout).toBe("");
    expect(await asAdmin(databasesOpenToPublic)).toEqual(["tenant_a", "tenant_b"]);

    await asAdmin(async (c) => {
      for (const db of ["tenant_a", "tenant_b"]) await c.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${db} FROM PUBLIC`);
    });
    const added = admin(["cluster", "add", "--name", "shared-1", "--url", server.url, "--insecure-tls"]);
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout).not.toContain(server.password);
  });

  it("a database the service creates accepts no connection until PUBLIC's access is revoked", async () => {
    await asAdmin(async (c) => {
      await createClosedDatabase(c, "closed_probe");
      expect(await tryConnect(server.user, server.password, "closed_probe")).toMatch(/not currently accepting connections/);
      await openDatabase(c, "closed_probe");
      expect(await tryConnect(server.user, server.password, "closed_probe")).toBe("ok");
      expect(await databasesOpenToPublic(c)).not.toContain("closed_probe");
      await c.query("DROP DATABASE closed_probe");
    });
  });

  it("a preview's role connects to its own database and to nothing else, during another project's verification too", async () => {
    // On the cluster as `cluster add` left it in the first test: postgres and template1 closed to PUBLIC.
    await ensurePreviewRole(conn, "capydb_pvw_a", "preview-a-password");
    await createPreviewDatabase(conn, "capydb_pvw_a", "capydb_pvw_a", "tenant_a");
    await ensurePreviewRole(conn, "capydb_pvw_b", "preview-b-password");
    await createPreviewDatabase(conn, "capydb_pvw_b", "capydb_pvw_b", "tenant_b");
    // Tenant B's backup is being verified: its scratch database exists while A's preview role is out there.
    const scratch = throwawayDatabaseName("bkp_01jzzzzzzzzzzzzzzzzzzzzzzz", 1);
    await createThrowaway(conn, scratch);

    const databases = await asAdmin(async (c) =>
      (await c.query<{ datname: string }>("SELECT datname FROM pg_database ORDER BY datname")).rows.map((r) => r.datname),
    );
    expect(databases).toEqual(expect.arrayContaining(["postgres", "template0", "template1", "tenant_a", "tenant_b", "capydb_pvw_a", "capydb_pvw_b", scratch]));
    const reached: Record<string, string> = {};
    for (const db of databases) reached[db] = await tryConnect("capydb_pvw_a", "preview-a-password", db);
    expect(
      Object.entries(reached)
        .filter(([, r]) => r === "ok")
        .map(([db]) => db),
    ).toEqual(["capydb_pvw_a"]);
    for (const [db, r] of Object.entries(reached)) {
      if (db !== "capydb_pvw_a") expect(r, db).toMatch(/permission denied for database|not currently accepting connections/);
    }
    // The service itself still reaches everything it works on.
    for (const db of ["postgres", "tenant_a", "capydb_pvw_a", "capydb_pvw_b", scratch])
      expect(await tryConnect(server.user, server.password, db), db).toBe("ok");
  });
});
