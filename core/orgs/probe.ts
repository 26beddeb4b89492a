import type { Deps } from "../deps.ts";
import { closeQuietly, connect, serverMajor, serverVersion } from "../worker/pgconn.ts";
import { isolateCluster, type ClusterIsolation } from "../pg/isolation.ts";
import { getClusterConnection, type ClusterConnection } from "./orgs.ts";

/**
 * The major PostgreSQL version of a cluster ("15"), asked of the server itself; undefined when it
 * cannot be reached (the project is still created, with `postgres_version` null).
 */
export async function probePostgresVersion(deps: Pick<Deps, "ddb" | "table" | "now" | "secretKey">, clusterId: string): Promise<string | undefined> {
  const conn = await getClusterConnection(deps, clusterId);
  let client;
  try {
    client = await connect(conn, conn.adminDatabase);
    return String(serverMajor((await serverVersion(client)).num));
  } catch {
    return undefined;
  } finally {
    await closeQuietly(client);
  }
}

/**
 * Closes a cluster's system databases to PUBLIC and reports what a preview role could still
 * connect to (see core/pg/isolation.ts); undefined when the cluster cannot be reached.
 */
export async function isolateNewCluster(conn: ClusterConnection): Promise<ClusterIsolation | undefined> {
  let client;
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
