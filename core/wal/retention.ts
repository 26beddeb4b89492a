/**
 * Retention of a cluster's archive. The window (`window_days`) promises that any time in the last
 * N days restores; pins (restore points of kind pitr) extend that to older times. What that needs
 * is the newest usable base backup that finished at or before the oldest promised time (the
 * anchor) and every WAL file from the anchor's start on: everything older goes. A failed base
 * backup is never an anchor, so it never shortens the window; with no usable base backup at all
 * nothing is deleted.
 */
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { deleteItemIf } from "../db/store.ts";
import { keys } from "../db/keys.ts";
import type { Deps } from "../deps.ts";
import { deleteWalFileRecord, getArchive, listBaseBackups, listGaps, listSegments } from "./archive.ts";
import { compareLsn } from "../pg/lsn.ts";
import { isUsable } from "./window.ts";

type RetentionDeps = Pick<Deps, "ddb" | "table" | "now" | "s3" | "bucket" | "log">;

/**
 * The times kept restorable past the window on a cluster (active restore points of kind pitr:
 * core/restores owns them; the entry point passes `listPitrPins` so this module does not import
 * the one above it).
 */
export type PinnedTimes = (clusterId: string) => Promise<Date[]>;

export interface RetentionResult {
  anchor: string | null;
  keepFrom: string;
  deletedBaseBackups: string[];
  deletedSegments: number;
  deletedGaps: number;
}

export async function enforceRetention(
  deps: RetentionDeps,
  clusterId: string,
  pinnedTimes: PinnedTimes = async () => [],
): Promise<RetentionResult | undefined> {
  const archive = await getArchive(deps, clusterId);
  if (!archive) return undefined;
  const now = deps.now();
  let keepFrom = now.getTime() - archive.window_days * 86_400_000;
  for (const t of await pinnedTimes(clusterId)) keepFrom = Math.min(keepFrom, t.getTime());
  const result: RetentionResult = { anchor: null, keepFrom: new Date(keepFrom).toISOString(), deletedBaseBackups: [], deletedSegments: 0, deletedGaps: 0 };

  const all = await listBaseBackups(deps, clusterId); // newest first
  const usable = all.filter(isUsable);
  const anchor = usable.find((b) => Date.parse(b.finished_at!) <= keepFrom) ?? usable.at(-1);
  if (!anchor) return result;
  result.anchor = anchor.id;

  for (const b of all) {
    if (b.id === anchor.id || b.state === "running" || Date.parse(b.started_at) >= Date.parse(anchor.started_at)) continue;
    await deps.s3.send(new DeleteObjectCommand({ Bucket: deps.bucket, Key: b.key })).catch(() => undefined);
    await deps.s3.send(new DeleteObjectCommand({ Bucket: deps.bucket, Key: b.manifest_key })).catch(() => undefined);
    await deleteItemIf(deps, keys.baseBackup(clusterId, b.id));
    result.deletedBaseBackups.push(b.id);
  }

  // Segments wholly before the anchor's start: replay from the anchor never reads them.
  for (const s of await listSegments(deps, clusterId)) {
    if (s.end_lsn === null || compareLsn(s.end_lsn, anchor.start_lsn!) > 0) break;
    await deps.s3.send(new DeleteObjectCommand({ Bucket: deps.bucket, Key: s.key })).catch(() => undefined);
    await deleteWalFileRecord(deps, s);
    result.deletedSegments++;
  }
  for (const g of await listGaps(deps, clusterId)) {
    if (compareLsn(g.to_lsn, anchor.start_lsn!) > 0) continue;
    await deleteItemIf(deps, keys.walGap(clusterId, g.id));
    result.deletedGaps++;
  }
  if (result.deletedBaseBackups.length || result.deletedSegments) deps.log.info("WAL retention", { cluster_id: clusterId, ...result });
  return result;
}
