import { describe, expect, it } from "vitest";
import { formatLsn, parseLsn, parseSegmentName, segmentName, segnoOf } from "../../core/pg/lsn.ts";
import type { BaseBackupItem, WalArchiveItem, WalGapItem } from "../../core/wal/records.ts";
import { baseBackupForTime, computeWindow, locateTime } from "../../core/wal/window.ts";

const t = (min: number) => new Date(Date.UTC(2026, 11, 6, 0, min)).toISOString().replace(/\.000Z$/, "Z");
const seg = 16 * 1024 * 1024;
const at = (segno: number, offset = 0) => formatLsn(BigInt(segno) * BigInt(seg) + BigInt(offset));

function bb(id: string, startSeg: number, endSeg: number, finishedMin: number, over: Partial<BaseBackupItem> = {}): BaseBackupItem {
  return {
    item_type: "base_backup",
    id,
    cluster_id: "cls_x",
    state: "completed",
    trigger: "daily",
    timeline: 1,
    start_lsn: at(startSeg, 40),
    end_lsn: at(endSeg, 256),
    start_segment: segmentName(1, BigInt(startSeg)),
    started_at: t(finishedMin - 1),
    finished_at: t(finishedMin),
    verified_at: t(finishedMin + 1),
    key: "k",
    manifest_key: "m",
    compression: "gzip",
    sha256: "a".repeat(64),
    size_bytes: 1,
    raw_bytes: 1,
    duration_ms: 1,
    error: null,
    worker_id: null,
    updated_at: t(finishedMin),
    ...over,
  };
}
function archive(restorableSeg: number, restorableMin: number): WalArchiveItem {
  return {
    item_type: "wal_archive",
    cluster_id: "cls_x",
    enabled: true,
    window_days: 7,
    slot_name: "s",
    segment_size: seg,
    timeline: 1,
    chain_start_lsn: at(1),
    archived_lsn: at(restorableSeg, 900),
    archived_at: t(restorableMin),
    restorable_lsn: at(restorableSeg, 800),
    restorable_time: t(restorableMin),
    slot_retained_bytes: 0,
    receiver_id: "r",
    receiver_heartbeat_at: t(restorableMin),
    receiver_error: null,
    base_backup_due_at: null,
    base_backup_reason: null,
    created_at: t(0),
    updated_at: t(restorableMin),
  };
}
function gap(fromSeg: number, toSeg: number, fromMin: number): WalGapItem {
  return {
    item_type: "wal_gap",
    id: `gap_${fromSeg}`,
    cluster_id: "cls_x",
    reason: "corrupt",
    timeline: 1,
    from_lsn: at(fromSeg),
    to_lsn: at(toSeg),
    from: t(fromMin),
    to: null,
    segments: [],
    detail: "",
    detected_at: t(fromMin),
  };
}

describe("WAL names and positions", () => {
  it("round-trips LSNs and segment names the way PostgreSQL prints them", () => {
    expect(formatLsn(parseLsn("16/B374D848"))).toBe("16/B374D848");
    expect(segmentName(1, segnoOf("16/B374D848"))).toBe("0000000100000016000000B3");
    expect(parseSegmentName("0000000200000016000000B3")).toEqual({ timeline: 2, segno: segnoOf("16/B3000000") });
    expect(() => parseLsn("16-B3")).toThrow(/not an LSN/);
  });
});

describe("restorable window", () => {
  const now = new Date(t(100));

  it("is unavailable (null times) without a verified base backup, even with WAL archived", () => {
    const w = computeWindow({ archive: archive(9, 99), baseBackups: [bb("bbk_1", 2, 2, 10, { verified_at: null })], gaps: [], now });
    expect(w).toMatchObject({ available: false, earliest_restore_time: null, latest_restore_time: null, lag_seconds: null });
  });

  it("runs from the oldest usable base backup's end to the newest restorable time, with the lag", () => {
    const w = computeWindow({ archive: archive(9, 99), baseBackups: [bb("bbk_2", 6, 6, 50), bb("bbk_1", 2, 2, 10)], gaps: [], now });
    expect(w).toMatchObject({
      available: true,
      earliest_restore_time: t(10),
      latest_restore_time: t(99),
      lag_seconds: 60,
      spans: [{ from: t(10), to: t(99) }],
    });
    expect(baseBackupForTime(w, [bb("bbk_2", 6, 6, 50), bb("bbk_1", 2, 2, 10)], new Date(t(70)))?.id).toBe("bbk_2");
    expect(baseBackupForTime(w, [bb("bbk_2", 6, 6, 50), bb("bbk_1", 2, 2, 10)], new Date(t(30)))?.id).toBe("bbk_1");
  });

  it("stops a base backup's range at the first gap, and opens again at the next base backup after it", () => {
    const bbs = [bb("bbk_1", 2, 2, 10), bb("bbk_2", 8, 8, 60)];
    const w = computeWindow({ archive: archive(9, 99), baseBackups: bbs, gaps: [gap(5, 7, 40)], now });
    expect(w.spans).toEqual([
      { from: t(10), to: t(40) },
      { from: t(60), to: t(99) },
    ]);
    expect(w.gaps).toMatchObject([{ from: t(40), to: t(60) }]);
    expect(locateTime(w, new Date(t(50)))).toEqual({ in: "gap", gap: { from: t(40), to: t(60) } });
    expect(baseBackupForTime(w, bbs, new Date(t(50)))).toBeUndefined();
  });

  it("ends at the gap while no base backup follows it (a lost slot): the lag grows, nothing pretends", () => {
    const w = computeWindow({ archive: archive(9, 99), baseBackups: [bb("bbk_1", 2, 2, 10)], gaps: [gap(5, 7, 40)], now });
    expect(w).toMatchObject({ latest_restore_time: t(40), lag_seconds: 60 * 60, latest_restore_lsn: at(5) });
    expect(w.gaps).toMatchObject([{ from: t(40), to: null }]);
  });

  it("gives nothing for a base backup whose own WAL has a gap before its end", () => {
    const w = computeWindow({ archive: archive(9, 99), baseBackups: [bb("bbk_1", 2, 4, 10)], gaps: [gap(3, 4, 5)], now });
    expect(w.available).toBe(false);
  });
});
