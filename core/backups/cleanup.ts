import { markBackupCleaned, markBackupFailed, type BackupItem, type BackupWorkItem } from "./backups.ts";
import type { Deps } from "../deps.ts";
import type { ClusterConnection } from "../pg/pgconn.ts";
import { getClusterConnection } from "../orgs/orgs.ts";
import { abortUpload, deleteArtifact } from "../aws/artifacts.ts";
import { dropScratchDatabases, throwawayDatabaseName } from "../pg/scratch.ts";

type CleanupDeps = Pick<Deps, "ddb" | "table" | "now" | "s3" | "bucket" | "secretKey" | "log">;

/** Every scratch database name any attempt up to `attempts` may have made (and the older per-backup name). */
export function scratchNames(backupId: string, attempts: number): string[] {
  return [throwawayDatabaseName(backupId), ...Array.from({ length: Math.max(0, attempts) }, (_, i) => throwawayDatabaseName(backupId, i + 1))];
}

const isMissing = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
};

/**
 * The one cleanup of a backup that failed for good, whatever path failed it (the worker's last
 * attempt, a delivery after the last attempt died, the reaper, the retention sweep retrying):
 * aborts every multipart upload any attempt started, deletes the artifact, and drops every
 * attempt's scratch database on the project's cluster and on the verification cluster the
 * attempts used (plus `servers`, e.g. a worker's configured verification server). Throws (after
 * trying everything) when something could not be removed.
 */
export async function cleanupFailedBackup(
  deps: CleanupDeps,
  backup: BackupWorkItem,
  opts: { attempts?: number; servers?: ClusterConnection[] } = {},
): Promise<void> {
  const problems: string[] = [];
  const uploads = new Set([...(backup.upload_ids ?? []), ...(backup.upload_id ? [backup.upload_id] : [])]);
  for (const id of uploads) await abortUpload(deps.s3, deps.bucket, backup.backup_key, id);
  await deleteArtifact(deps.s3, deps.bucket, backup.backup_key).catch((err: unknown) => {
    if (!isMissing(err)) problems.push(`artifact: ${String(err)}`);
  });

  const names = scratchNames(backup.id, Math.max(opts.attempts ?? 0, backup.attempt ?? 0));
  const servers: ClusterConnection[] = [...(opts.servers ?? [])];
  for (const clusterId of new Set([backup.cluster_id, ...(backup.verify_cluster_id ? [backup.verify_cluster_id] : [])])) {
    try {
      servers.push(await getClusterConnection(deps, clusterId));
    } catch (err) {
      problems.push(`cluster ${clusterId}: ${String(err)}`);
    }
  }
  const seen = new Set<string>();
  for (const server of servers) {
    const id = `${server.host}:${server.port}`;
    if (seen.has(id)) continue;
    seen.add(id);
    await dropScratchDatabases(server, names).catch((err: unknown) => problems.push(`scratch databases on ${id}: ${String((err as Error).message ?? err)}`));
  }
  if (problems.length) throw new Error(`the failed backup ${backup.id} is not cleaned up yet: ${problems.join("; ")}`);
}

/**
 * Fails the backup for good (its job has already failed: that is the fence) and cleans up what
 * every attempt left. When the cleanup fails, the backup keeps `cleanup_pending` and stays on the
 * retention index, so the dispatcher's sweep finds it and retries until nothing is left.
 */
export async function failBackupForGood(
  deps: CleanupDeps,
  backup: BackupItem,
  why: { verificationError: string; attempts: number; servers?: ClusterConnection[] },
): Promise<void> {
  const failed = (await markBackupFailed(deps, backup, { verificationError: why.verificationError })) ?? undefined;
  // Already failed by another path: clean up anyway only if it still says something is pending.
  const target = failed ?? (backup as BackupWorkItem);
  if (!failed && !(target as BackupWorkItem).cleanup_pending) return;
  try {
    await cleanupFailedBackup(deps, target, { attempts: why.attempts, servers: why.servers });
    await markBackupCleaned(deps, target);
  } catch (err) {
    deps.log.warn("a failed backup's cleanup failed; the dispatcher's sweep retries it", { backup_id: backup.id, error: String(err) });
  }
}
