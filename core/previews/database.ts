import pg from "pg";
import { createClosedDatabase, openDatabase } from "../pg/isolation.ts";
import { closeQuietly, connect, serverVersion, withAdmin, type ClusterConnection } from "../pg/pgconn.ts";

/**
 * What a preview is on its cluster: a login role and a database it owns, both named
 * `capydb_pvw_<ulid>`. Every statement here is idempotent, so a retry after a crash converges.
 */
const id = (name: string) => pg.escapeIdentifier(name);

/**
 * Creates the role (or resets its password to the stored one), without any power beyond logging
 * in, and makes the cluster's own user a member so it can hand the database to it (PostgreSQL 15
 * requires membership to create a database owned by another role).
 */
export async function ensurePreviewRole(conn: ClusterConnection, role: string, password: string): Promise<void> {
  await withAdmin(conn, async (c) => {
    const { rows } = await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]);
    // The password goes as a literal (utility statements take no parameters); escapeLiteral quotes it.
    const attrs = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20 PASSWORD ${c.escapeLiteral(password)}`;
    if (!rows.length) {
      await c.query(`CREATE ROLE ${id(role)} ${attrs}`).catch((err: { code?: string }) => {
        if (err.code !== "42710") throw err; // created concurrently
      });
    } else {
      await c.query(`ALTER ROLE ${id(role)} ${attrs}`);
    }
    const { rows: member } = await c.query<{ m: boolean }>("SELECT pg_has_role(current_user, $1, 'MEMBER') AS m", [role]);
    if (!member[0]?.m) await c.query(`GRANT ${id(role)} TO CURRENT_USER`);
  });
}

/** Drops the database (and any session in it). */
export async function dropPreviewDatabase(conn: ClusterConnection, database: string): Promise<void> {
  await withAdmin(conn, async (c) => {
    const v = await serverVersion(c);
    if (v.num >= 130000) await c.query(`DROP DATABASE IF EXISTS ${id(database)} WITH (FORCE)`);
    else {
      await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [database]);
      await c.query(`DROP DATABASE IF EXISTS ${id(database)}`);
    }
  });
}

/**
 * A fresh, empty database owned by the role. PostgreSQL grants CONNECT on every new database to
 * PUBLIC: the preview is created closed to every connection and opened only once that is revoked,
 * and it is revoked on the project's database too, so the preview's role
 * reaches only its own preview (and no other role reaches the preview but its owner and the
 * cluster's administrators).
 */
export async function createPreviewDatabase(conn: ClusterConnection, database: string, role: string, projectDatabase: string): Promise<void> {
  await withAdmin(conn, async (c) => {
    const { rows } = await c.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    // Closed until PUBLIC's access is revoked (a retry after a crash in between opens it here).
    if (!rows.length) await createClosedDatabase(c, database, role);
    await isolate(c, database, role, projectDatabase);
  });
}

async function isolate(c: pg.Client, database: string, role: string, projectDatabase: string) {
  await openDatabase(c, database, role);
  const { rows } = await c.query("SELECT 1 FROM pg_database WHERE datname = $1", [projectDatabase]);
  if (rows.length) {
    // The service's own user keeps its access to the project's database explicitly.
    await c.query(`GRANT CONNECT ON DATABASE ${id(projectDatabase)} TO CURRENT_USER`);
    await c.query(`REVOKE CONNECT ON DATABASE ${id(projectDatabase)} FROM PUBLIC`);
  }
}

/**
 * Drops, inside the preview's database, everything its role owns (every object a restore or the
 * preview's user made: pg_restore runs as that role), leaving an empty database under the same
 * name. Sessions that hold locks on those objects make it wait up to `lock_timeout`, then fail
 * (transient: the job retries). DROP OWNED also revokes the role's grants here and on the database;
 * the role keeps its access as the database's owner, and the grants are given back at once.
 */
export async function emptyPreviewDatabase(conn: ClusterConnection, database: string, role: string): Promise<void> {
  const client = await connect(conn, database);
  try {
    await client.query("SET lock_timeout = '30s'");
    await client.query("BEGIN");
    await client.query(`DROP OWNED BY ${id(role)}`);
    await client.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${id(database)} TO ${id(role)}`);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    await closeQuietly(client);
  }
}

/** Drops the database and the role: nothing of the preview is left on the cluster. */
export async function dropPreview(conn: ClusterConnection, database: string, role: string): Promise<void> {
  await dropPreviewDatabase(conn, database);
  await withAdmin(conn, async (c) => {
    // The role owns nothing outside its (now dropped) database; its grants on it went with it.
    await c.query(`DROP ROLE IF EXISTS ${id(role)}`);
  });
}

/** The preview role's view of the cluster: same server, its own name and password. */
export function previewConnection(cluster: ClusterConnection, role: string, password: string): ClusterConnection {
  return { ...cluster, user: role, password };
}

/** `postgres://role:password@host:port/database?sslmode=...` */
export function previewUrl(cluster: Pick<ClusterConnection, "host" | "port" | "sslmode">, role: string, password: string, database: string): string {
  const u = new URL("postgres://placeholder");
  u.hostname = cluster.host;
  u.port = String(cluster.port);
  u.username = role;
  u.password = password;
  u.pathname = `/${database}`;
  if (cluster.sslmode) u.searchParams.set("sslmode", cluster.sslmode);
  return u.toString();
}
