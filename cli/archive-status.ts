import type { ArchiveHealth } from "../core/wal/health.ts";
import { formatBytes, formatDuration, formatTime, renderFields } from "./capydb/output.ts";

/** `capydb-admin archive status -o table`: one block of fields per cluster, trouble first in each line. */
export function archiveStatusTable(all: ArchiveHealth[]): string {
  if (!all.length) return "No cluster has a WAL archive (capydb-admin archive enable --cluster <id>).\n";
  return all
    .map((h) => {
      const seg = h.latest_segment;
      const bb = h.newest_verified_base_backup;
      const fail = h.last_base_backup_failure;
      const fields: [string, string][] = [
        ["Cluster", h.cluster_id],
        ["Archiving", h.enabled ? "on" : "off"],
        ["Receiver", h.receiver.error ? `error: ${h.receiver.error}` : h.receiver.id ? `${h.receiver.id}, heard ${formatTime(h.receiver.heartbeat_at)}` : "-"],
        ["Latest segment", seg ? `${seg.name}${seg.partial ? " (partial)" : ""} at ${formatTime(seg.archived_at)}` : "-"],
        ["Restorable time", formatTime(h.restorable_time)],
        ["Lag", formatDuration(h.lag_seconds * 1000)],
        ["Slot", `${h.slot.name}, ${h.slot.retained_bytes === null ? "retained WAL unknown" : `${formatBytes(h.slot.retained_bytes)} retained`}`],
        [
          "Window",
          h.window.available
            ? `${formatTime(h.window.earliest_restore_time)} to ${formatTime(h.window.latest_restore_time)} (${h.window_days} days)`
            : "none yet",
        ],
        [
          "Base backup",
          bb ? `${bb.id} finished ${formatTime(bb.finished_at)}${bb.size_bytes === null ? "" : `, ${formatBytes(bb.size_bytes)}`}` : "none verified",
        ],
        ["Base backup failure", fail ? `${fail.id} at ${formatTime(fail.finished_at)}${h.base_backup_failing ? " (FAILING)" : ""}: ${fail.error ?? "-"}` : "-"],
        [
          "Base backup due",
          h.running_base_backup
            ? `running ${h.running_base_backup.id}`
            : h.base_backup_due_at
              ? `${formatTime(h.base_backup_due_at)} (${h.base_backup_reason ?? "-"})`
              : "-",
        ],
        ["Open gaps", h.open_gaps.length ? h.open_gaps.map((g) => `${g.reason} ${g.from_lsn}..${g.to_lsn} since ${formatTime(g.from)}`).join("; ") : "none"],
      ];
      return renderFields(fields);
    })
    .join("\n");
}
