/**
 * The archive's index: reads and writes of the items in records.ts, and reading objects back with
 * their checksums checked. The point-in-time restores read the archive only through
 * `listBaseBackups`, `getWalFile` / `fetchWalFile`, `openBaseBackup` and `restorableWindow`.
 */
import { createHash } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { type Readable, Transform } from "node:stream";
import { promisify } from "node:util";
import { createGunzip, gunzip } from "node:zlib";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { keys } from "../db/keys.ts";
import { deleteItemIf, getItem, putItemIf, queryAll, setFields, updateItemIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { DEFAULT_SEGMENT_SIZE, HISTORY_NAME_RE, SEGMENT_NAME_RE } from "../pg/lsn.ts";
import {
  baseBackupItem,
  DEFAULT_PITR_WINDOW_DAYS,
  walArchiveItem,
  walGapItem,
  walSegmentItem,
  type BaseBackupItem,
  type WalArchiveItem,
  type WalGapItem,
  type WalSegmentItem,
} from "./records.ts";
import { computeWindow, type RestorableWindow } from "./window.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;
type Store = Db & Pick<Deps, "s3" | "bucket">;

// ---------------------------------------------------------------------------------------------
// The archive item

export async function getArchive(deps: Db, clusterId: string): Promise<WalArchiveItem | undefined> {
  return getItem(deps, walArchiveItem, keys.walArchive(clusterId));
}

/** Replication slot name of a cluster's archive (slot names: lower case, digits, underscore). */
export const slotNameFor = (clusterId: string): string => `capydb_wal_${clusterId.replace(/^cls_/, "")}`;

/**
 * Turns archiving on for a cluster (idempotent): the receiver supervisor picks it up, and a base
 * backup is due at once so the window opens within minutes.
 */
export async function enableArchive(deps: Db, clusterId: string, opts: { windowDays?: number } = {}): Promise<WalArchiveItem> {
  const now = iso(deps.now());
  const item: WalArchiveItem = {
    item_type: "wal_archive",
    cluster_id: clusterId,
    enabled: true,
    window_days: opts.windowDays ?? DEFAULT_PITR_WINDOW_DAYS,
    slot_name: slotNameFor(clusterId),
    segment_size: DEFAULT_SEGMENT_SIZE,
    timeline: null,
    chain_start_lsn: null,
    archived_lsn: null,
    archived_at: null,
    restorable_lsn: null,
    restorable_time: null,
    slot_retained_bytes: null,
    receiver_id: null,
    receiver_heartbeat_at: null,
    receiver_error: null,
    base_backup_due_at: now,
    base_backup_reason: "initial",
    created_at: now,
    updated_at: now,
  };
  const created = await putItemIf(
    deps,
    { ...keys.walArchive(clusterId), gsi1pk: keys.walArchiveIndex, gsi1sk: clusterId, ...item },
    { condition: "attribute_not_exists(pk)" },
  );
  if (created) return item;
  const existing = (await getArchive(deps, clusterId))!;
  const changes: Partial<WalArchiveItem> = {};
  if (!existing.enabled) changes.enabled = true;
  if (opts.windowDays !== undefined && opts.windowDays !== existing.window_days) changes.window_days = opts.windowDays;
  return Object.keys(changes).length ? updateArchive(deps, clusterId, changes) : existing;
}

/** Every cluster with an archive (a sparse index: one item per archived cluster). */
export async function listArchives(deps: Db): Promise<WalArchiveItem[]> {
  return queryAll(deps, walArchiveItem, {
    IndexName: "gsi1",
    KeyConditionExpression: "gsi1pk = :p",
    ExpressionAttributeValues: { ":p": keys.walArchiveIndex },
  });
}

/** Updates fields of an existing archive item; `updated_at` is set. */
export async function updateArchive(
  deps: Db,
  clusterId: string,
  fields: Partial<Omit<WalArchiveItem, "item_type" | "cluster_id" | "created_at">>,
  cond: { condition?: string; values?: Record<string, unknown>; names?: Record<string, string> } = {},
): Promise<WalArchiveItem> {
  const set = setFields({ ...fields, updated_at: iso(deps.now()) });
  const item = await updateItemIf(deps, walArchiveItem, {
    Key: keys.walArchive(clusterId),
    ...set,
    ConditionExpression: ["attribute_exists(pk)", cond.condition].filter(Boolean).join(" AND "),
    ExpressionAttributeNames: { ...set.ExpressionAttributeNames, ...cond.names },
    ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ...cond.values },
  });
  if (!item) throw new AppError("conflict", `the WAL archive of cluster ${clusterId} changed concurrently or does not exist`);
  return item;
}

// ---------------------------------------------------------------------------------------------
// WAL files

/**
 * The archived file a restore_command asks for (`%f`: a segment name or `<timeline>.history`):
 * its object key, compression and checksums; undefined when the archive does not hold it. A
 * segment still being written answers its newest `.partial` object (`partial: true`).
 */
export async function getWalFile(deps: Db, clusterId: string, name: string): Promise<WalSegmentItem | undefined> {
  if (SEGMENT_NAME_RE.test(name)) return getItem(deps, walSegmentItem, keys.walSegment(clusterId, name));
  if (HISTORY_NAME_RE.test(name)) return getItem(deps, walSegmentItem, keys.walHistory(clusterId, Number.parseInt(name.slice(0, 8), 16)));
  return undefined;
}

/**
 * Segments of a cluster in WAL order (timeline, then position), from `fromName` on (inclusive),
 * at most `limit`. History files are not included.
 */
export async function listSegments(deps: Db, clusterId: string, opts: { fromName?: string; limit?: number } = {}): Promise<WalSegmentItem[]> {
  return queryAll(
    deps,
    walSegmentItem,
    {
      KeyConditionExpression: opts.fromName ? "pk = :p AND sk BETWEEN :from AND :to" : "pk = :p AND sk < :hist",
      ExpressionAttributeValues: opts.fromName
        ? { ":p": keys.walSegmentPartition(clusterId), ":from": opts.fromName, ":to": "FFFFFFFFFFFFFFFFFFFFFFFF" }
        : { ":p": keys.walSegmentPartition(clusterId), ":hist": "HIST#" },
    },
    opts.limit,
  );
}

/** The newest segment in the index (finished or the partial one), history files left out. */
export async function newestSegment(deps: Db, clusterId: string): Promise<WalSegmentItem | undefined> {
  const [newest] = await queryAll(
    deps,
    walSegmentItem,
    {
      KeyConditionExpression: "pk = :p AND sk < :hist",
      ExpressionAttributeValues: { ":p": keys.walSegmentPartition(clusterId), ":hist": "HIST#" },
      ScanIndexForward: false,
      Limit: 1,
    },
    1,
  );
  return newest;
}

/**
 * Records an archived file. A finished segment is written once (a second upload of the same
 * finished segment, after a receiver restart, leaves the first record) and replaces the partial
 * record of the same name; a partial one replaces an older partial. Answers false when the index
 * already held a finished one.
 */
export async function recordWalFile(deps: Db, item: WalSegmentItem): Promise<boolean> {
  const key = item.kind === "history" ? keys.walHistory(item.cluster_id, item.timeline) : keys.walSegment(item.cluster_id, item.name);
  return putItemIf(
    deps,
    { ...key, ...walSegmentItem.parse(item) },
    {
      condition: "attribute_not_exists(pk) OR #partial = :true",
      names: { "#partial": "partial" },
      values: { ":true": true },
    },
  );
}

/** Marks a segment as read back and found right (the continuity sweep). */
export async function markWalFileChecked(deps: Db, clusterId: string, name: string, at: Date): Promise<void> {
  await updateItemIf(deps, walSegmentItem, {
    Key: keys.walSegment(clusterId, name),
    ...setFields({ checked_at: iso(at) }),
    ConditionExpression: "attribute_exists(pk)",
  });
}

export async function deleteWalFileRecord(deps: Db, item: WalSegmentItem): Promise<void> {
  await deleteItemIf(deps, item.kind === "history" ? keys.walHistory(item.cluster_id, item.timeline) : keys.walSegment(item.cluster_id, item.name));
}

const gunzipAsync = promisify(gunzip);

/** An object's bytes, refused unless their SHA-256 is `sha256` (so a changed object never reaches a restore). */
async function getChecked(deps: Store, key: string, sha256: string): Promise<Buffer> {
  let body: Buffer;
  try {
    const res = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
    const bytes = await res.Body!.transformToByteArray();
    body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength); // a view, not a second copy
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === "NoSuchKey" || name === "NotFound") throw new WalObjectError("missing", `archived object ${key} is missing from the bucket`);
    throw err;
  }
  const got = createHash("sha256").update(body).digest("hex");
  if (got !== sha256) throw new WalObjectError("corrupt", `archived object ${key} is corrupt: its SHA-256 is ${got}, the index recorded ${sha256}`);
  return body;
}

/** A WAL object that cannot be used: gone from the bucket, or not the bytes the index recorded. */
export class WalObjectError extends Error {
  override name = "WalObjectError";
  constructor(
    readonly reason: "missing" | "corrupt",
    message: string,
  ) {
    super(message);
  }
}

/**
 * The WAL file's bytes as PostgreSQL wrote them, the stored object's SHA-256 checked, then the WAL
 * bytes' (`rawChecksum`, default on). Throws WalObjectError when the object is missing or corrupt.
 * A restore's spool turns the second off: the stored object's checksum proves the bytes are the
 * ones written, and gunzip checks the gzip member's CRC-32 and length against the WAL bytes the
 * archiver compressed, so hashing 16 MiB again on the event loop, beside replay, proves nothing
 * more (the continuity sweep keeps both, off the restore's path).
 */
export async function readWalFile(deps: Store, file: WalSegmentItem, opts: { rawChecksum?: boolean } = {}): Promise<Buffer> {
  const stored = await getChecked(deps, file.key, file.stored_sha256);
  // On the thread pool: a restore's spool decompresses segments ahead of replay while the event
  // loop keeps answering the recovery instance's restore_command.
  let raw: Buffer;
  try {
    // One output buffer of the recorded size (+1, so zlib ends in it instead of asking for another):
    // with zlib's default 16 KiB pieces a 16 MiB segment takes a thousand trips to the thread pool
    // and a join of as many buffers, over four times the CPU (measured: 105 ms against 24).
    // Never more bytes than the index recorded: a bigger output is not the file that was archived.
    raw = await gunzipAsync(stored, {
      chunkSize: Math.min(Math.max(file.size_bytes + 1, 64 * 1024), 64 * 1024 * 1024),
      maxOutputLength: Math.max(file.size_bytes, 1),
    });
  } catch (err) {
    throw new WalObjectError("corrupt", `archived WAL ${file.name} does not decompress: ${(err as Error).message}`);
  }
  if (opts.rawChecksum === false) return raw;
  const got = createHash("sha256").update(raw).digest("hex");
  if (got !== file.sha256) throw new WalObjectError("corrupt", `archived WAL ${file.name} is corrupt after decompression`);
  return raw;
}

/**
 * restore_command's work: writes the archived file `name` to `dest` (atomically: a temporary
 * name, then rename, so PostgreSQL never reads half a file). Answers false when the archive does
 * not hold it (restore_command then exits non-zero, which PostgreSQL reads as "no such file"),
 * throws WalObjectError when it holds it but the object is missing or corrupt.
 */
export async function fetchWalFile(deps: Store, clusterId: string, name: string, dest: string): Promise<WalSegmentItem | undefined> {
  const file = await getWalFile(deps, clusterId, name);
  if (!file) return undefined;
  const raw = await readWalFile(deps, file);
  await mkdir(dirname(dest), { recursive: true });
  const tmp = `${dest}.capydb-tmp`;
  await writeFile(tmp, raw);
  await rename(tmp, dest).catch(async (err) => {
    await rm(tmp, { force: true });
    throw err;
  });
  return file;
}

// ---------------------------------------------------------------------------------------------
// Base backups

/** A cluster's base backups, newest first, in every state (ids sort by creation time). */
export async function listBaseBackups(deps: Db, clusterId: string): Promise<BaseBackupItem[]> {
  return queryAll(deps, baseBackupItem, {
    KeyConditionExpression: "pk = :p AND begins_with(sk, :b)",
    ExpressionAttributeValues: { ":p": keys.walArchive(clusterId).pk, ":b": keys.baseBackupPrefix },
    ScanIndexForward: false,
  });
}

export async function getBaseBackup(deps: Db, clusterId: string, id: string): Promise<BaseBackupItem | undefined> {
  return getItem(deps, baseBackupItem, keys.baseBackup(clusterId, id));
}

export async function putBaseBackup(deps: Db, item: BaseBackupItem, opts: { create?: boolean } = {}): Promise<boolean> {
  return putItemIf(
    deps,
    { ...keys.baseBackup(item.cluster_id, item.id), ...baseBackupItem.parse(item) },
    opts.create ? { condition: "attribute_not_exists(pk)" } : {},
  );
}

/**
 * The base backup's tar, decompressed, as a stream: errors (and never ends cleanly) if the stored
 * object's SHA-256 is not the recorded one, so an extraction fed from it fails rather than
 * restoring changed bytes. Pipe it into `tar -x`.
 */
export async function openBaseBackup(deps: Store, backup: BaseBackupItem): Promise<Readable> {
  if (backup.state !== "completed" || !backup.sha256) throw new AppError("conflict", `base backup ${backup.id} is ${backup.state}, not usable`);
  const res = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: backup.key }));
  const hash = createHash("sha256");
  const expected = backup.sha256;
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      const got = hash.digest("hex");
      cb(got === expected ? null : new WalObjectError("corrupt", `base backup ${backup.id} is corrupt: its SHA-256 is ${got}, the index recorded ${expected}`));
    },
  });
  // 1 MiB pieces (zlib's default is 16 KiB): the extraction writes each file in a few large writes.
  return (res.Body as Readable).pipe(check).pipe(createGunzip({ chunkSize: 1024 * 1024 }));
}

// ---------------------------------------------------------------------------------------------
// Gaps and the window

export async function listGaps(deps: Db, clusterId: string): Promise<WalGapItem[]> {
  return queryAll(deps, walGapItem, {
    KeyConditionExpression: "pk = :p AND begins_with(sk, :g)",
    ExpressionAttributeValues: { ":p": keys.walArchive(clusterId).pk, ":g": keys.walGapPrefix },
  });
}

export async function putGap(deps: Db, gap: WalGapItem): Promise<void> {
  await putItemIf(deps, { ...keys.walGap(gap.cluster_id, gap.id), ...walGapItem.parse(gap) });
}

/**
 * The cluster's restorable window now (see window.ts): `available: false` and null times when the
 * cluster has no archive or no usable base backup yet.
 */
export async function restorableWindow(
  deps: Db,
  clusterId: string,
): Promise<RestorableWindow & { archive: WalArchiveItem | undefined; baseBackups: BaseBackupItem[] }> {
  const [archive, baseBackups, gaps] = await Promise.all([getArchive(deps, clusterId), listBaseBackups(deps, clusterId), listGaps(deps, clusterId)]);
  const window = computeWindow({ archive, baseBackups, gaps, now: deps.now() });
  return { ...window, archive, baseBackups };
}
