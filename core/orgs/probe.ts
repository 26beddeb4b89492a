import type { Deps } from "../deps.ts";
import { closeQuietly, connect, serverMajor, serverVersion } from "../worker/pgconn.ts";
import { getClusterConnection } from "./orgs.ts";

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
