import { closeQuietly, connect, type ClusterConnection } from "./pgconn.ts";

/**
 * Marks the cluster's WAL with `pg_create_restore_point(name)` (a restore point's id: the WAL is
 * shared by every tenant of the cluster, so never the customer's label). False when the cluster
 * cannot be reached or refuses (the point then restores by its time).
 */
export async function markWalRestorePoint(conn: ClusterConnection, name: string): Promise<boolean> {
  let client: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    client = await connect(conn, conn.adminDatabase);
    await client.query("SELECT pg_create_restore_point($1)", [name]);
    return true;
  } catch {
    return false;
  } finally {
    await closeQuietly(client);
  }
}
