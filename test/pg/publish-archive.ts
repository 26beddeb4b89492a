import { Upload } from "@aws-sdk/lib-storage";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { Deps } from "../../core/deps.ts";
import { parseManifest } from "../../core/pg/basebackup-extract.ts";
import { enableArchive, putBaseBackup, recordWalFile, updateArchive } from "../../core/wal/archive.ts";
import { baseBackupKey, baseBackupManifestKey, partialKey, segmentKey } from "../../core/wal/layout.ts";
import { formatLsn, parseLsn, parseSegmentName, segmentBounds, segmentName, segnoOf } from "../../core/pg/lsn.ts";
import { newId } from "../../core/ids.ts";
import type { ArchivedCluster } from "./archived-cluster.ts";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/**
 * Puts what an ArchivedCluster's receiver and base backups hold into the service's archive, in
 * the WAL archive's storage contract (core/wal: objects under its key layout, gzip, SHA-256s, and
 * the index records), the way the archive lane's receiver writes it. The restores read only
 * through that contract, so this stands in for the receiver in tests of the restore side.
 */
export async function publishArchive(deps: Deps, src: ArchivedCluster, clusterId: string, tars: string[]): Promise<void> {
  await enableArchive(deps, clusterId);
  // Multipart, as the archiver uploads: a bench-sized base backup is past the S3 stand-in's single-PUT limit.
  const put = (key: string, body: Buffer) =>
    new Upload({ client: deps.s3, params: { Bucket: deps.bucket, Key: key, Body: body }, partSize: 8 * 1024 * 1024, queueSize: 4 }).done();
  for (const tar of tars) {
    const raw = readFileSync(tar);
    const gz = gzipSync(raw, { level: 1 });
    const id = newId("baseBackup", src.backupTimes.get(tar)!.startedAt);
    const manifestStart = raw.lastIndexOf(Buffer.from('{ "PostgreSQL-Backup-Manifest-Version"'));
    const manifestBytes = raw.subarray(manifestStart, raw.indexOf(0, manifestStart));
    const range = parseManifest(manifestBytes)["WAL-Ranges"][0]!;
    await put(baseBackupKey(clusterId, id), gz);
    await put(baseBackupManifestKey(clusterId, id), manifestBytes);
    const t = src.backupTimes.get(tar)!;
    await putBaseBackup(deps, {
      item_type: "base_backup",
      id,
      cluster_id: clusterId,
      state: "completed",
      trigger: "initial",
      timeline: range.Timeline,
      start_lsn: range["Start-LSN"],
      end_lsn: range["End-LSN"],
      start_segment: segmentName(range.Timeline, segnoOf(range["Start-LSN"])),
      started_at: t.startedAt.toISOString(),
      finished_at: t.finishedAt.toISOString(),
      verified_at: t.finishedAt.toISOString(),
      key: baseBackupKey(clusterId, id),
      manifest_key: baseBackupManifestKey(clusterId, id),
      compression: "gzip",
      sha256: sha(gz),
      size_bytes: gz.length,
      raw_bytes: raw.length,
      duration_ms: t.finishedAt.getTime() - t.startedAt.getTime(),
      error: null,
      worker_id: null,
      updated_at: new Date().toISOString(),
    });
  }
  // The WAL: what the receiver flushed, up to the server's position at this moment.
  await src.flushWal();
  const restorableTime = new Date();
  const [{ lsn }] = (await src.query<{ lsn: string }>("postgres", "SELECT pg_current_wal_insert_lsn()::text AS lsn")) as [{ lsn: string }];
  await src.flushWal();
  let archived = "0/0";
  for (const f of readdirSync(src.walDir).sort()) {
    const m = /^([0-9A-F]{24})(\.partial)?$/.exec(f);
    if (!m) continue;
    const raw = readFileSync(join(src.walDir, f));
    const gz = gzipSync(raw, { level: 1 });
    const name = m[1]!;
    const partial = Boolean(m[2]);
    const seg = parseSegmentName(name);
    const bounds = segmentBounds(seg.segno);
    // LSNs are bigints, which Math.max does not take.
    // biome-ignore lint/complexity/useMathMinMax: bigint operands
    const end = partial ? formatLsn(parseLsn(lsn) > parseLsn(bounds.start) ? parseLsn(lsn) : parseLsn(bounds.start)) : bounds.end;
    const key = partial ? partialKey(clusterId, seg.timeline, name) : segmentKey(clusterId, seg.timeline, name);
    await put(key, gz);
    await recordWalFile(deps, {
      item_type: "wal_segment",
      cluster_id: clusterId,
      name,
      kind: "segment",
      timeline: seg.timeline,
      partial,
      start_lsn: bounds.start,
      end_lsn: end,
      key,
      compression: "gzip",
      sha256: sha(raw),
      stored_sha256: sha(gz),
      size_bytes: raw.length,
      stored_bytes: gz.length,
      restorable_time: null,
      archived_at: new Date().toISOString(),
      checked_at: null,
    });
    if (parseLsn(end) > parseLsn(archived)) archived = end;
  }
  await updateArchive(deps, clusterId, {
    timeline: 1,
    chain_start_lsn: "0/0",
    archived_lsn: archived,
    archived_at: new Date().toISOString(),
    restorable_lsn: lsn,
    restorable_time: restorableTime.toISOString(),
    base_backup_due_at: null,
  });
}
