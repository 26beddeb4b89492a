import type pg from "pg";
import type { Deps } from "../deps.ts";
import { closeQuietly, connect, serverMajor, serverVersion, type ClusterConnection } from "../pg/pgconn.ts";
import { isolateCluster, type ClusterIsolation } from "../pg/isolation.ts";
import { getClusterConnection } from "./orgs.ts";

/** What a project's server says about itself; each field is absent when it could not be read. */
export interface ProjectFacts {
  /** The major version ("15"). */
  postgres_version?: string;
  /** The server's `max_connections`. */
  max_connections?: number;
  /** The role that owns the project's database: the application's own credentials. */
  role_name?: string;
}

/**
 * Asks the cluster what a new project's record should say (its version, its connection limit, the
 * owner of its database); an unreachable cluster answers nothing (the project is still created,
 * and the API then shows documented defaults).
 */
export async function probeProjectFacts(deps: Pick<Deps, "ddb" | "table" | "now" | "secretKey">, clusterId: string, database?: string): Promise<ProjectFacts> {
  const conn = await getClusterConnection(deps, clusterId);
  let client: pg.Client | undefined;
  try {
    client = await connect(conn, conn.adminDatabase);
    const facts: ProjectFacts = { postgres_version: String(serverMajor((await serverVersion(client)).num)) };
    const { rows } = await client.query<{ max: string }>("SELECT current_setting('max_connections') AS max");
    if (rows[0]) facts.max_connections = Number(rows[0].max);
    if (database) {
      const owner = await client.query<{ owner: string }>("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1", [database]);
      if (owner.rows[0]) facts.role_name = owner.rows[0].owner;
    }
    return facts;
  } catch {
    return {};
  } finally {
    await closeQuietly(client);
  }
}

/**
 * Closes a cluster's system databases to PUBLIC and reports what a preview role could still
 * connect to (see core/pg/isolation.ts); undefined when the cluster cannot be reached.
 */
export async function isolateNewCluster(conn: ClusterConnection): Promise<ClusterIsolation | undefined> {
  let client: pg.Client | undefined;
  try {
    client = await connect(conn, conn.adminDatabase);
  } catch {
    await closeQuietly(client);
    return undefined;
  }
  try {
    return await isolateCluster(client, conn.adminDatabase);
  } finally {
    await closeQuietly(client);
  }
}
