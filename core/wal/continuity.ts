/**
 * The continuity sweep: reads archived segments back and checks them against the index. A segment
 * whose object is gone or whose SHA-256 is not the recorded one, or a hole or disorder in the
 * sequence of names, is a gap: recorded with its bounds (so the window stops before it) and a
 * base backup made due at once (so the window reopens after it).
 */
import { iso, type Deps } from "../deps.ts";
import { newId } from "../ids.ts";
import { getArchive, listGaps, listSegments, markWalFileChecked, putGap, readWalFile, updateArchive, WalObjectError } from "./archive.ts";
import { compareLsn, parseSegmentName } from "../pg/lsn.ts";
import type { WalGapItem, WalSegmentItem } from "./records.ts";

type SweepDeps = Pick<Deps, "ddb" | "table" | "now" | "s3" | "bucket" | "log">;

export interface SweepResult {
  checked: number;
  gaps: WalGapItem[];
}

/** Checks every finished segment of the cluster (`onlyUnchecked`: those not checked before). */
export async function checkArchive(deps: SweepDeps, clusterId: string, opts: { onlyUnchecked?: boolean } = {}): Promise<SweepResult> {
  const archive = await getArchive(deps, clusterId);
  if (!archive) return { checked: 0, gaps: [] };
  const known = await listGaps(deps, clusterId);
  const segments = await listSegments(deps, clusterId);
  const found: WalGapItem[] = [];
  let prev: WalSegmentItem | undefined;
  let checked = 0;
  const covered = (from: string, to: string) => known.some((g) => compareLsn(g.from_lsn, from) <= 0 && compareLsn(g.to_lsn, to) >= 0);
  const gap = async (reason: WalGapItem["reason"], from: string, to: string, names: string[], detail: string) => {
    if (covered(from, to)) return;
    const g: WalGapItem = {
      item_type: "wal_gap",
      id: newId("walGap", deps.now()),
      cluster_id: clusterId,
      reason,
      timeline: archive.timeline,
      from_lsn: from,
      to_lsn: to,
      from: prev?.restorable_time ?? null,
      to: null,
      segments: names,
      detail,
      detected_at: iso(deps.now()),
    };
    await putGap(deps, g);
    known.push(g);
    found.push(g);
  };
  for (const s of segments) {
    if (s.start_lsn === null || s.end_lsn === null) continue;
    if (prev?.end_lsn && compareLsn(s.start_lsn, prev.end_lsn) !== 0) {
      const order = parseSegmentName(s.name, archive.segment_size).segno > parseSegmentName(prev.name, archive.segment_size).segno;
      if (order && compareLsn(s.start_lsn, prev.end_lsn) > 0) {
        await gap("missing", prev.end_lsn, s.start_lsn, [], `no segment between ${prev.name} and ${s.name}`);
      } else if (!order) {
        await gap("out_of_order", s.start_lsn, prev.end_lsn, [s.name], `segment ${s.name} overlaps or precedes ${prev.name}`);
      }
    }
    if (!s.partial && (!opts.onlyUnchecked || s.checked_at === null)) {
      checked++;
      try {
        await readWalFile(deps, s);
        await markWalFileChecked(deps, clusterId, s.name, deps.now());
      } catch (err) {
        if (!(err instanceof WalObjectError)) throw err;
        await gap(err.reason === "missing" ? "missing" : "corrupt", s.start_lsn, s.end_lsn, [s.name], err.message);
      }
    }
    prev = s;
  }
  if (found.length) {
    deps.log.error("WAL archive gap found by the continuity sweep", {
      cluster_id: clusterId,
      gaps: found.map((g) => ({ reason: g.reason, from_lsn: g.from_lsn, to_lsn: g.to_lsn })),
    });
    await updateArchive(deps, clusterId, { base_backup_due_at: iso(deps.now()), base_backup_reason: "after_gap" });
  }
  return { checked, gaps: found };
}
