/**
 * The archiver: the long-running service beside the worker (a Fargate service deployed, a loop in
 * `npm start`) that keeps one receiver per archived cluster and takes the base backups that are
 * due. Base backups run here rather than as queue jobs: this process already has the PostgreSQL
 * client tools, the cluster's replication access and no 15-minute limit, and a cluster is not a
 * project (jobs are per project).
 */
import type { Deps } from "../deps.ts";
import { errorText } from "../concurrency.ts";
import { listArchives } from "./archive.ts";
import { runBaseBackup } from "./basebackups.ts";
import { checkArchive } from "./continuity.ts";
import { ClusterReceiver, defaultReceiverOptions, type ReceiverOptions } from "./receiver.ts";
import { enforceRetention, type PinnedTimes } from "./retention.ts";

type ArchiverDeps = Pick<Deps, "ddb" | "table" | "now" | "s3" | "bucket" | "secretKey" | "pgBinDirs" | "log" | "workerId">;

export interface ArchiverOptions {
  receiver: ReceiverOptions;
  /** How often the list of archives is read (new clusters start streaming within this). */
  scanMs: number;
  /** How often the continuity sweep (new segments read back) and retention run per cluster. */
  retentionMs: number;
  scratchDir?: string;
  /** Times kept past the window (restore points of kind pitr), for retention. */
  pinnedTimes?: PinnedTimes;
}

export const defaultArchiverOptions = (spoolDir: string): ArchiverOptions => ({
  receiver: defaultReceiverOptions(spoolDir),
  scanMs: 5_000,
  retentionMs: 15 * 60_000,
});

export function startArchiver(deps: ArchiverDeps, opts: ArchiverOptions) {
  const receivers = new Map<string, ClusterReceiver>();
  const stopper = new AbortController();
  const lastRetention = new Map<string, number>();
  let backingUp: Promise<unknown> = Promise.resolve();
  let busy = false;

  const scan = async () => {
    const archives = await listArchives(deps);
    for (const a of archives) {
      const running = receivers.get(a.cluster_id);
      if (a.enabled && !running) receivers.set(a.cluster_id, new ClusterReceiver(deps, a.cluster_id, opts.receiver).start());
      if (!a.enabled && running) {
        receivers.delete(a.cluster_id);
        await running.stop();
      }
    }
    // Base backups one at a time (each reads a whole cluster), and only where the receiver streams:
    // its slot checked (a lost one is a gap first) and the WAL the backup needs on its way.
    const due = archives.find(
      (a) => a.enabled && a.base_backup_due_at && Date.parse(a.base_backup_due_at) <= deps.now().getTime() && receivers.get(a.cluster_id)?.streaming,
    );
    if (due && !busy) {
      busy = true;
      backingUp = runBaseBackup(deps, due.cluster_id, due.base_backup_reason ?? "daily", { signal: stopper.signal, scratchDir: opts.scratchDir })
        .catch((err: unknown) => deps.log.error("base backup could not start", { cluster_id: due.cluster_id, error: errorText(err) }))
        .finally(() => (busy = false));
    }
    for (const a of archives) {
      if (Date.now() - (lastRetention.get(a.cluster_id) ?? 0) < opts.retentionMs) continue;
      lastRetention.set(a.cluster_id, Date.now());
      await checkArchive(deps, a.cluster_id, { onlyUnchecked: true }).catch((err: unknown) =>
        deps.log.warn("WAL continuity sweep failed", { cluster_id: a.cluster_id, error: errorText(err) }),
      );
      await enforceRetention(deps, a.cluster_id, opts.pinnedTimes).catch((err: unknown) =>
        deps.log.warn("WAL retention failed", { cluster_id: a.cluster_id, error: errorText(err) }),
      );
    }
  };

  const loop = (async () => {
    while (!stopper.signal.aborted) {
      await scan().catch((err: unknown) => deps.log.warn("archiver scan failed", { error: errorText(err) }));
      await new Promise<void>((r) => {
        const t = setTimeout(r, opts.scanMs);
        stopper.signal.addEventListener(
          "abort",
          () => {
            clearTimeout(t);
            r();
          },
          { once: true },
        );
      });
    }
  })();
  return {
    receivers,
    async stop() {
      stopper.abort();
      await loop;
      await Promise.all([...receivers.values()].map((r) => r.stop()));
      await backingUp;
    },
  };
}
