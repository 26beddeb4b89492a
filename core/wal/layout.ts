/**
 * Where the archive keeps its objects in the bucket, and how they are encoded: the storage
 * contract the receiver writes and the point-in-time restores read.
 *
 * ```
 * wal/<cluster id>/<timeline, 8 hex>/<segment name, 24 hex>.gz            a finished segment
 * wal/<cluster id>/<timeline>/<segment name>.partial.gz                    the segment being written (replaced on each ship)
 * wal/<cluster id>/<timeline>/<timeline>.history.gz                        a timeline history file
 * basebackups/<cluster id>/<base backup id>/base.tar.gz                    pg_basebackup -Ft (backup_manifest inside)
 * basebackups/<cluster id>/<base backup id>/backup_manifest                the manifest again, uncompressed, for pg_verifybackup
 * ```
 *
 * Every object is gzip (RFC 1952) of the file PostgreSQL wrote, readable with `gzip -d` or
 * `tar -xz`; each index record names its `compression` so a later codec can coexist. gzip because
 * the runtime has it (Node 20's zlib has no zstd) and the restore side needs nothing else; WAL
 * compresses 3-10:1 with it (measured in docs/pitr.md). A segment's index record carries the
 * SHA-256 of the stored object (`stored_sha256`, checked before decompressing) and of the WAL
 * bytes (`sha256`, checked after).
 */
import { timelineHex } from "../pg/lsn.ts";

export const WAL_COMPRESSION = "gzip" as const;
export type WalCompression = typeof WAL_COMPRESSION;

export const walPrefix = (clusterId: string): string => `wal/${clusterId}/`;

export const segmentKey = (clusterId: string, timeline: number, name: string): string => `wal/${clusterId}/${timelineHex(timeline)}/${name}.gz`;

export const partialKey = (clusterId: string, timeline: number, name: string): string => `wal/${clusterId}/${timelineHex(timeline)}/${name}.partial.gz`;

export const historyKey = (clusterId: string, timeline: number): string => `wal/${clusterId}/${timelineHex(timeline)}/${timelineHex(timeline)}.history.gz`;

export const baseBackupPrefix = (clusterId: string, baseBackupId: string): string => `basebackups/${clusterId}/${baseBackupId}/`;

export const baseBackupKey = (clusterId: string, baseBackupId: string): string => `${baseBackupPrefix(clusterId, baseBackupId)}base.tar.gz`;

export const baseBackupManifestKey = (clusterId: string, baseBackupId: string): string => `${baseBackupPrefix(clusterId, baseBackupId)}backup_manifest`;
