import pg from "pg";
import { libpqTls, nodeTls } from "./tls.ts";

/** How to reach a PostgreSQL server (orgs fills it from a cluster record); only ever handed to pg and child process environments. */
export interface ClusterConnection {
  host: string;
  port: number;
  user: string;
  password: string;
  adminDatabase: string;
  /** As registered; the connection's mode comes from core/pg/tls.ts (verify-full unless insecureTls). */
  sslmode: string | null;
  insecureTls?: boolean;
}

/** A connected client to `database`; the password stays inside the config object. */
export async function connect(conn: ClusterConnection, database: string): Promise<pg.Client> {
  const client = new pg.Client({
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    database,
    // verify-full unless the cluster opted out (core/pg/tls.ts).
    ssl: nodeTls(conn),
    connectionTimeoutMillis: 15_000,
    application_name: "capydb-backup",
  });
  // A connection dropped while idle emits 'error' on the client: the next query reports it.
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

export async function closeQuietly(client: pg.Client | undefined): Promise<void> {
  await client?.end().catch(() => undefined);
}

/** Runs `fn` on a connection to the server's admin database, closed whatever happens. */
export async function withAdmin<T>(conn: ClusterConnection, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(conn, conn.adminDatabase);
  try {
    return await fn(client);
  } finally {
    await closeQuietly(client);
  }
}

/**
 * The environment of a pg_dump/pg_restore child: the connection in libpq's variables (the password
 * in PGPASSWORD, never argv), nothing inherited that could redirect it (PGSERVICE, ~/.pgpass),
 * and the C locale so that client messages are English for classification.
 */
export function toolEnv(conn: ClusterConnection, database: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    LC_ALL: "C",
    LANG: "C",
    PGHOST: conn.host,
    PGPORT: String(conn.port),
    PGUSER: conn.user,
    PGPASSWORD: conn.password,
    PGDATABASE: database,
    ...libpqTls(conn),
    PGCONNECT_TIMEOUT: "15",
    PGAPPNAME: "capydb-backup",
    PGPASSFILE: "/dev/null",
  };
}

export interface ServerVersion {
  /** `server_version_num`, e.g. 150018. */
  num: number;
  /** `server_version`, e.g. "15.18". */
  text: string;
}

export async function serverVersion(client: pg.Client): Promise<ServerVersion> {
  const { rows } = await client.query<{ num: string; text: string }>(
    "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text",
  );
  return { num: Number(rows[0]!.num), text: rows[0]!.text.split(" ")[0]! };
}

/** Major version of a server (15 for 150018; 9.6 for 90624). */
export const serverMajor = (num: number): number => (num >= 100000 ? Math.floor(num / 10000) : Math.floor(num / 100) / 100);

/**
 * The tables whose rows pg_dump writes: ordinary tables (partitions included, as leaves) outside
 * the system schemas, minus tables that belong to an extension (pg_dump leaves those to
 * CREATE EXTENSION).
 */
export async function listTables(client: pg.Client): Promise<{ schema: string; name: string }[]> {
  const { rows } = await client.query<{ schema: string; name: string }>(`
    SELECT n.nspname AS schema, c.relname AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1, 2`);
  return rows;
}

/** Row count of every table ("schema.table" -> rows), in the client's current snapshot. */
export async function countRows(client: pg.Client, tables: { schema: string; name: string }[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < tables.length; i += 50) {
    const chunk = tables.slice(i, i + 50);
    const sql = chunk
      .map((t, n) => `SELECT ${n} AS i, count(*) AS n FROM ONLY ${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.name)}`)
      .join(" UNION ALL ");
    const { rows } = await client.query<{ i: number; n: string }>(sql);
    for (const r of rows) {
      const t = chunk[r.i]!;
      counts[`${t.schema}.${t.name}`] = Number(r.n);
    }
  }
  return counts;
}
