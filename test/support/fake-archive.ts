import { enableArchive, putBaseBackup, putGap, updateArchive } from "../../core/wal/archive.ts";
import { newId } from "../../core/ids.ts";
import type { TestEnv } from "./env.ts";

const at = (t0: number, minutes: number) => new Date(t0 + minutes * 60_000).toISOString();

/**
 * An archive index with no objects behind it, for tests of the API's rules only: a base backup
 * finished at t0+1 min, a gap from t0+10 min (the next base backup, at t0+20 min, ends it), and
 * WAL restorable up to t0+30 min. The window is then [t0+1, t0+10] and [t0+20, t0+30].
 */
export async function fakeArchive(env: Pick<TestEnv, "deps">, clusterId: string, t0: number): Promise<void> {
  await enableArchive(env.deps, clusterId);
  const backup = (start: string, minutes: number) =>
    putBaseBackup(env.deps, {
      item_type: "base_backup",
      id: newId("baseBackup", new Date(t0 + minutes * 60_000)),
      cluster_id: clusterId,
      state: "completed",
      trigger: "daily",
      timeline: 1,
      start_lsn: start,
      end_lsn: start.replace(/000000$/, "000100"),
      start_segment: null,
      started_at: at(t0, minutes - 1),
      finished_at: at(t0, minutes),
      verified_at: at(t0, minutes),
      key: "basebackups/x/base.tar.gz",
      manifest_key: "basebackups/x/backup_manifest",
      compression: "gzip",
      sha256: "0".repeat(64),
      size_bytes: 1000,
      raw_bytes: 5000,
      duration_ms: 60_000,
      error: null,
      worker_id: null,
      updated_at: at(t0, minutes),
    });
  await backup("0/2000000", 1);
  await backup("0/8000000", 20);
  await putGap(env.deps, {
    item_type: "wal_gap",
    id: newId("walGap", new Date(t0 + 10 * 60_000)),
    cluster_id: clusterId,
    reason: "slot_lost",
    timeline: 1,
    from_lsn: "0/5000000",
    to_lsn: "0/7000000",
    from: at(t0, 10),
    to: null,
    segments: [],
    detail: "the replication slot was lost",
    detected_at: at(t0, 11),
  });
  await updateArchive(env.deps, clusterId, {
    timeline: 1,
    chain_start_lsn: "0/8000000",
    archived_lsn: "0/9000000",
    archived_at: at(t0, 30),
    restorable_lsn: "0/9000000",
    restorable_time: at(t0, 30),
    base_backup_due_at: null,
  });
}
