/**
 * The archive's index in DynamoDB (keys in core/db/keys.ts): one archive item per cluster, one
 * item per archived WAL file, one per base backup, one per gap. Times are RFC 3339 UTC, LSNs
 * PostgreSQL's `X/Y` text (see lsn.ts for arithmetic).
 */
import { z } from "../zod.ts";
import { isLsn } from "../pg/lsn.ts";

export const lsnSchema = z.string().refine(isLsn, "must be an LSN such as 0/3000028");

/** `pitr_window_days` when a cluster's archive does not say otherwise (CapyDB's own is about 30). */
export const DEFAULT_PITR_WINDOW_DAYS = 7;

export const baseBackupTriggers = ["initial", "daily", "operator", "after_gap"] as const;

/**
 * A cluster's archive: what the receiver has shipped and what is restorable. The receiver owns the
 * progress fields; `restorable_time` is the newest moment whose every commit lies at or before
 * `restorable_lsn`, itself at or before `archived_lsn` (see core/wal/receiver).
 */
export const walArchiveItem = z.object({
  item_type: z.literal("wal_archive"),
  cluster_id: z.string(),
  enabled: z.boolean(),
  window_days: z.number().int().min(1).max(3650),
  /** The replication slot on the cluster that keeps WAL until the receiver has it. */
  slot_name: z.string(),
  segment_size: z.number().int().positive(),
  /** Timeline the receiver streams (the cluster's current one when it last connected). */
  timeline: z.number().int().positive().nullable(),
  /** Start of the gap-free run the receiver is extending (moves forward when a gap is recorded). */
  chain_start_lsn: lsnSchema.nullable(),
  /** End of the WAL shipped to S3 (finished segments and the partial one), contiguous from `chain_start_lsn`. */
  archived_lsn: lsnSchema.nullable(),
  archived_at: z.string().nullable(),
  restorable_lsn: lsnSchema.nullable(),
  restorable_time: z.string().nullable(),
  /** WAL the slot holds on the cluster's disk (bytes), last seen by the receiver. */
  slot_retained_bytes: z.number().int().nonnegative().nullable(),
  receiver_id: z.string().nullable(),
  receiver_heartbeat_at: z.string().nullable(),
  /** Last error the receiver met (redacted), cleared once it streams again. */
  receiver_error: z.string().nullable(),
  /** Set when a base backup must be taken at once (no base backup yet, a lost slot): the dispatcher starts it. */
  base_backup_due_at: z.string().nullable(),
  /** Why it is due (recorded on the base backup as its trigger). */
  base_backup_reason: z.enum(baseBackupTriggers).nullable().default(null),
  created_at: z.string(),
  updated_at: z.string(),
});
export type WalArchiveItem = z.infer<typeof walArchiveItem>;

/** One archived WAL file: a finished segment, the partial one (replaced as it grows), or a timeline history. */
export const walSegmentItem = z.object({
  item_type: z.literal("wal_segment"),
  cluster_id: z.string(),
  /** The file name PostgreSQL's restore_command asks for (`000000010000000000000003`, `00000002.history`). */
  name: z.string(),
  kind: z.enum(["segment", "history"]),
  timeline: z.number().int().positive(),
  /** True while the object holds the segment being written (a `.partial`), false once the segment is finished. */
  partial: z.boolean(),
  /** Segment: first byte; history: null. */
  start_lsn: lsnSchema.nullable(),
  /** Segment: the first byte not in the object (the segment's end once finished). */
  end_lsn: lsnSchema.nullable(),
  key: z.string(),
  compression: z.literal("gzip"),
  /** SHA-256 (hex) of the WAL bytes, checked after decompressing. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** SHA-256 (hex) of the stored object, checked before decompressing (and by the continuity sweep). */
  stored_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size_bytes: z.number().int().nonnegative(),
  stored_bytes: z.number().int().nonnegative(),
  /** Newest time whose commits all lie in this segment or before it (null when unknown). */
  restorable_time: z.string().nullable(),
  archived_at: z.string(),
  /** Last time the continuity sweep read the object back and found its checksum right. */
  checked_at: z.string().nullable(),
});
export type WalSegmentItem = z.infer<typeof walSegmentItem>;

export const baseBackupStates = ["running", "completed", "failed", "deleted"] as const;
/** One physical base backup (`pg_basebackup -Ft`, gzip, verified with pg_verifybackup). */
export const baseBackupItem = z.object({
  item_type: z.literal("base_backup"),
  id: z.string(),
  cluster_id: z.string(),
  state: z.enum(baseBackupStates),
  trigger: z.enum(baseBackupTriggers),
  timeline: z.number().int().positive().nullable(),
  /** Replay starts here (the backup's checkpoint redo point). */
  start_lsn: lsnSchema.nullable(),
  /** The copy is consistent once replay reaches this point: no time before `finished_at` restores from it. */
  end_lsn: lsnSchema.nullable(),
  /** The segment holding `start_lsn`: every segment from it on is needed to restore from this backup. */
  start_segment: z.string().nullable(),
  started_at: z.string(),
  finished_at: z.string().nullable(),
  verified_at: z.string().nullable(),
  key: z.string(),
  manifest_key: z.string(),
  compression: z.literal("gzip"),
  /** SHA-256 (hex) of the stored object. */
  sha256: z.string().nullable(),
  /** Bytes stored (compressed) and bytes of the tar. */
  size_bytes: z.number().int().nonnegative().nullable(),
  raw_bytes: z.number().int().nonnegative().nullable(),
  duration_ms: z.number().int().nonnegative().nullable(),
  error: z.string().nullable(),
  worker_id: z.string().nullable(),
  updated_at: z.string(),
});
export type BaseBackupItem = z.infer<typeof baseBackupItem>;

export const gapReasons = ["missing", "corrupt", "out_of_order", "slot_lost"] as const;

/**
 * WAL the archive does not hold: nothing between `from_lsn` and `to_lsn` can be replayed, so no
 * restore crosses it. `from` is the newest restorable time before it; `to` is when a base
 * backup after it finished (null until one has).
 */
export const walGapItem = z.object({
  item_type: z.literal("wal_gap"),
  id: z.string(),
  cluster_id: z.string(),
  reason: z.enum(gapReasons),
  timeline: z.number().int().positive().nullable(),
  from_lsn: lsnSchema,
  to_lsn: lsnSchema,
  from: z.string().nullable(),
  to: z.string().nullable(),
  /** The segments concerned (missing or corrupt ones), for operators. */
  segments: z.array(z.string()),
  detail: z.string(),
  detected_at: z.string(),
});
export type WalGapItem = z.infer<typeof walGapItem>;
