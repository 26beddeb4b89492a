import pg from "pg";

/**
 * Tenants apart on a shared cluster. PostgreSQL grants CONNECT (and TEMPORARY) on every new
 * database to PUBLIC, so a preview's role, whose credentials a customer holds, could connect to
 * any database on the cluster it shares: `postgres`, another project's verification scratch
 * database, another preview. Every database the service creates is made closed (no connection at
 * all) and opened only once PUBLIC's access is revoked; a cluster is registered only once the
 * databases every cluster has are closed to PUBLIC too.
 */

const id = (name: string) => pg.escapeIdentifier(name);

/**
 * Creates `name` (from template0, owned by `owner` or by the connected user) with connections
 * disallowed, so that nobody, not even a superuser, connects before PUBLIC's access is revoked.
 * Call `openDatabase` once the grants are in place.
 */
export async function createClosedDatabase(c: pg.Client, name: string, owner?: string): Promise<void> {
  await c.query(`CREATE DATABASE ${id(name)}${owner ? ` OWNER ${id(owner)}` : ""} TEMPLATE template0 ALLOW_CONNECTIONS false`);
}

/**
 * Revokes PUBLIC's CONNECT and TEMPORARY on `name`, keeps the connected (service) user's CONNECT
 * explicitly, grants `role` (a preview's owner role) its own, then allows connections. Idempotent:
 * a retry after a crash between creation and here converges.
 */
export async function openDatabase(c: pg.Client, name: string, role?: string): Promise<void> {
  await c.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${id(name)} FROM PUBLIC`);
  await c.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${id(name)} TO CURRENT_USER`);
  if (role) await c.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${id(name)} TO ${id(role)}`);
  await c.query(`ALTER DATABASE ${id(name)} WITH ALLOW_CONNECTIONS true`);
}

/** The databases every cluster has, which the service closes to PUBLIC when a cluster is added. */
const systemDatabases = ["postgres", "template1", "template0"];

/** Databases that accept connections and whose CONNECT is PUBLIC's (a NULL acl is the default: PUBLIC may connect). */
export async function databasesOpenToPublic(c: pg.Client): Promise<string[]> {
  const { rows } = await c.query<{ datname: string }>(
    `SELECT datname FROM pg_database d
     WHERE datallowconn AND (datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'))
     ORDER BY datname`,
  );
  return rows.map((r) => r.datname);
}

export interface ClusterIsolation {
  /** The system databases whose CONNECT this run revoked from PUBLIC. */
  closed: string[];
  /** Databases a preview role could still connect to (empty: isolated). */
  open: string[];
}

/**
 * What a shared cluster needs before previews may live on it: CONNECT revoked from PUBLIC on
 * `postgres` and the templates (the connected user keeps its own explicitly: it may be the admin
 * database), then no database left that PUBLIC may connect to. A REVOKE the user may not make (not
 * the owner) changes nothing, which the check afterwards reports.
 */
export async function isolateCluster(c: pg.Client, adminDatabase: string): Promise<ClusterIsolation> {
  const before = await databasesOpenToPublic(c);
  const closed: string[] = [];
  for (const name of [...new Set([...systemDatabases, adminDatabase])].filter((n) => before.includes(n))) {
    // Ours first, so the service never locks itself out of its admin database.
    await c.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${id(name)} TO CURRENT_USER`).catch(() => undefined);
    await c.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${id(name)} FROM PUBLIC`).catch(() => undefined);
    closed.push(name);
  }
  const open = await databasesOpenToPublic(c);
  return { closed: closed.filter((n) => !open.includes(n)), open };
}
