import pg from "pg";
import { serverVersion, withAdmin, type ClusterConnection } from "./pgconn.ts";

/*
 * Scratch databases: the throwaway databases a restore check creates. Apart from verify.ts so that
 * whoever cleans up after a failed backup (the dispatcher's reaper and retention sweep) drops them
 * without carrying the restore and archive machinery in its bundle.
 */

/**
 * `capydb_verify_<backup ulid>_<attempt>`: deterministic per backup and attempt (well under 63
 * bytes), so the cleanup of a failed backup knows every name, and attempts never share one.
 * Without `attempt`, the name earlier versions used (one per backup), which the cleanup drops too.
 */
export const throwawayDatabaseName = (backupId: string, attempt?: number) =>
  `capydb_verify_${backupId.replace(/^bkp_/, "")}${attempt === undefined ? "" : `_${attempt}`}`;

/** Drops the throwaway database (and any session in it). Never throws. */
export async function dropThrowaway(conn: ClusterConnection, name: string): Promise<void> {
  // Best effort: the cleanup of a failed backup drops every attempt's name again.
  await dropScratchDatabases(conn, [name]).catch(() => undefined);
}

/** Drops the named scratch databases (and any session in them); throws when the server cannot be reached or refuses. */
export async function dropScratchDatabases(conn: ClusterConnection, names: string[]): Promise<void> {
  await withAdmin(conn, async (admin) => {
    const v = await serverVersion(admin);
    for (const name of names) {
      if (v.num >= 130000) {
        await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      } else {
        await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [name]);
        await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`);
      }
    }
  });
}
