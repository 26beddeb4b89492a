/**
 * Archive health per cluster, from the index alone: what operators read (`capydb-admin archive
 * status`) and what the dispatcher publishes as metrics every tick (the alarms: lag, open gaps, a
 * failing base backup, WAL the slot keeps on the cluster). Computed from DynamoDB rather than by
 * the receiver itself, so a receiver that died shows as a lag that grows, not as silence.
 */
import type { Deps } from "../deps.ts";
import { getArchive, listArchives, listBaseBackups, listGaps, newestSegment } from "./archive.ts";
import type { WalArchiveItem } from "./records.ts";
import { computeWindow, isUsable } from "./window.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

export interface ArchiveHealth {
  cluster_id: string;
  enabled: boolean;
  window_days: number;
  receiver: { id: string | null; heartbeat_at: string | null; error: string | null };
  latest_segment: { name: string; partial: boolean; end_lsn: string | null; archived_at: string } | null;
  archived_lsn: string | null;
  archived_at: string | null;
  /** The newest restorable moment the receiver proved (a heartbeat the archive covers). */
  restorable_time: string | null;
  /**
   * Now minus `restorable_time`, whole seconds; an archive that never proved a time lags since it
   * was created (a receiver that never streamed must alarm too).
   */
  lag_seconds: number;
  slot: { name: string; retained_bytes: number | null };
  window: { available: boolean; earliest_restore_time: string | null; latest_restore_time: string | null };
  newest_verified_base_backup: { id: string; finished_at: string | null; size_bytes: number | null; duration_ms: number | null } | null;
  /** The newest failed base backup, when no verified one came after it: `failing` says so. */
  last_base_backup_failure: { id: string; finished_at: string | null; error: string | null } | null;
  /** True while the newest finished base backup attempt failed (the alarm's figure). */
  base_backup_failing: boolean;
  running_base_backup: { id: string; started_at: string } | null;
  base_backup_due_at: string | null;
  base_backup_reason: WalArchiveItem["base_backup_reason"];
  /** Gaps no verified base backup has closed yet: no restore reaches past them until one does. */
  open_gaps: { id: string; reason: string; from_lsn: string; to_lsn: string; from: string | null; detected_at: string; detail: string }[];
  gaps_total: number;
}

export async function archiveHealth(deps: Db, clusterId: string, archive?: WalArchiveItem): Promise<ArchiveHealth | undefined> {
  archive ??= await getArchive(deps, clusterId);
  if (!archive) return undefined;
  const now = deps.now();
  const [baseBackups, gaps, newest] = await Promise.all([listBaseBackups(deps, clusterId), listGaps(deps, clusterId), newestSegment(deps, clusterId)]);
  const window = computeWindow({ archive, baseBackups, gaps, now });
  // listBaseBackups: newest first.
  const verified = baseBackups.find(isUsable);
  const finished = baseBackups.find((b) => b.state === "completed" || b.state === "failed");
  const failed = baseBackups.find((b) => b.state === "failed");
  const failing = finished?.state === "failed";
  const running = baseBackups.find((b) => b.state === "running");
  const since = archive.restorable_time ?? archive.created_at;
  const gapById = new Map(gaps.map((g) => [g.id, g]));
  return {
    cluster_id: clusterId,
    enabled: archive.enabled,
    window_days: archive.window_days,
    receiver: { id: archive.receiver_id, heartbeat_at: archive.receiver_heartbeat_at, error: archive.receiver_error },
    latest_segment: newest ? { name: newest.name, partial: newest.partial, end_lsn: newest.end_lsn, archived_at: newest.archived_at } : null,
    archived_lsn: archive.archived_lsn,
    archived_at: archive.archived_at,
    restorable_time: archive.restorable_time,
    lag_seconds: Math.max(0, Math.floor((now.getTime() - Date.parse(since)) / 1000)),
    slot: { name: archive.slot_name, retained_bytes: archive.slot_retained_bytes },
    window: { available: window.available, earliest_restore_time: window.earliest_restore_time, latest_restore_time: window.latest_restore_time },
    newest_verified_base_backup: verified
      ? { id: verified.id, finished_at: verified.finished_at, size_bytes: verified.size_bytes, duration_ms: verified.duration_ms }
      : null,
    last_base_backup_failure: failed && (!verified || failed.id > verified.id) ? { id: failed.id, finished_at: failed.finished_at, error: failed.error } : null,
    base_backup_failing: failing,
    running_base_backup: running ? { id: running.id, started_at: running.started_at } : null,
    base_backup_due_at: archive.base_backup_due_at,
    base_backup_reason: archive.base_backup_reason,
    open_gaps: window.gaps
      .filter((g) => g.to === null)
      .map((g) => {
        const item = gapById.get(g.id)!;
        return { id: g.id, reason: g.reason, from_lsn: g.from_lsn, to_lsn: g.to_lsn, from: g.from, detected_at: item.detected_at, detail: item.detail };
      }),
    gaps_total: gaps.length,
  };
}

/** Every archived cluster's health (disabled archives included, marked so). */
export async function allArchiveHealth(deps: Db): Promise<ArchiveHealth[]> {
  const archives = await listArchives(deps);
  const out: ArchiveHealth[] = [];
  for (const a of archives) {
    const h = await archiveHealth(deps, a.cluster_id, a);
    if (h) out.push(h);
  }
  return out;
}
