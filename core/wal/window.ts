/**
 * The restorable window, from the index alone (pure: the API, the restores, retention and the
 * alarms all compute it the same way). A time is restorable when some verified base backup
 * finished at or before it and the WAL from that backup's start up to the time is archived
 * without a gap: the window is the union of those ranges, one per base backup.
 */
import type { BaseBackupItem, WalArchiveItem, WalGapItem } from "./records.ts";
import { DEFAULT_PITR_WINDOW_DAYS } from "./records.ts";
import { parseLsn } from "../pg/lsn.ts";

export interface WindowRange {
  /** The base backup this range restores from. */
  base_backup_id: string;
  from: string;
  to: string;
}

export interface WindowGap {
  id: string;
  reason: WalGapItem["reason"];
  /** Newest restorable time before the gap (null when nothing before it was). */
  from: string | null;
  /** When restores became possible again after it: the next verified base backup's end (null until then). */
  to: string | null;
  from_lsn: string;
  to_lsn: string;
}

export interface RestorableWindow {
  /** True when at least one time can be restored to. */
  available: boolean;
  window_days: number;
  earliest_restore_time: string | null;
  latest_restore_time: string | null;
  /** The LSN `latest_restore_time` is known to lie before (replay up to it reaches that time). */
  latest_restore_lsn: string | null;
  /** Now minus `latest_restore_time`, whole seconds; null when unavailable. */
  lag_seconds: number | null;
  /** One range per usable base backup, oldest first; they may overlap. */
  ranges: WindowRange[];
  /** The same times merged: what a person sees as the covered stretches. */
  spans: { from: string; to: string }[];
  gaps: WindowGap[];
}

const ms = (t: string): number => Date.parse(t);

/** Base backups a restore may start from: finished and checked against their manifest. */
export const isUsable = (b: BaseBackupItem): boolean =>
  b.state === "completed" && b.verified_at !== null && b.finished_at !== null && b.start_lsn !== null && b.end_lsn !== null;

export function computeWindow(input: {
  archive: WalArchiveItem | undefined;
  baseBackups: readonly BaseBackupItem[];
  gaps: readonly WalGapItem[];
  now: Date;
}): RestorableWindow {
  const { archive, now } = input;
  const windowDays = archive?.window_days ?? DEFAULT_PITR_WINDOW_DAYS;
  const usable = input.baseBackups.filter(isUsable).sort((a, b) => cmp(a.start_lsn!, b.start_lsn!));
  const gaps = [...input.gaps].sort((a, b) => cmp(a.from_lsn, b.from_lsn));

  const ranges: WindowRange[] = [];
  for (const b of usable) {
    const start = parseLsn(b.start_lsn!);
    const end = parseLsn(b.end_lsn!);
    // The first gap the replay from this backup would meet.
    const gap = gaps.find((g) => parseLsn(g.to_lsn) > start);
    let to: string | null;
    if (gap) to = parseLsn(gap.from_lsn) >= end ? gap.from : null;
    else to = archive?.restorable_lsn && archive.restorable_time && parseLsn(archive.restorable_lsn) >= end ? archive.restorable_time : null;
    if (to !== null && ms(to) >= ms(b.finished_at!)) ranges.push({ base_backup_id: b.id, from: b.finished_at!, to });
  }
  ranges.sort((a, b) => ms(a.from) - ms(b.from));

  const spans: { from: string; to: string }[] = [];
  for (const r of ranges) {
    const last = spans.at(-1);
    if (last && ms(r.from) <= ms(last.to)) {
      if (ms(r.to) > ms(last.to)) last.to = r.to;
    } else spans.push({ from: r.from, to: r.to });
  }

  const windowGaps: WindowGap[] = gaps.map((g) => {
    const after = usable.find((b) => parseLsn(b.start_lsn!) >= parseLsn(g.to_lsn));
    return { id: g.id, reason: g.reason, from: g.from, to: after?.finished_at ?? null, from_lsn: g.from_lsn, to_lsn: g.to_lsn };
  });

  const earliest = spans[0]?.from ?? null;
  const latest = spans.reduce<string | null>((acc, s) => (acc === null || ms(s.to) > ms(acc) ? s.to : acc), null);
  const latestLsn = latest !== null && latest === archive?.restorable_time ? archive.restorable_lsn : latestGapLsn(gaps, latest);
  return {
    available: spans.length > 0,
    window_days: windowDays,
    earliest_restore_time: earliest,
    latest_restore_time: latest,
    latest_restore_lsn: latestLsn,
    lag_seconds: latest === null ? null : Math.max(0, Math.floor((now.getTime() - ms(latest)) / 1000)),
    ranges,
    spans,
    gaps: windowGaps,
  };
}

/** When the newest span ends at a gap, replay can go up to the gap's start and no further. */
function latestGapLsn(gaps: readonly WalGapItem[], latest: string | null): string | null {
  if (latest === null) return null;
  return gaps.find((g) => g.from === latest)?.from_lsn ?? null;
}

const cmp = (a: string, b: string): number => {
  const d = parseLsn(a) - parseLsn(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};

/**
 * Where a restore to `target` starts: the newest usable base backup whose range holds the time
 * (the least WAL to replay). Undefined when the time is outside the window or inside a gap.
 */
export function baseBackupForTime(window: RestorableWindow, baseBackups: readonly BaseBackupItem[], target: Date): BaseBackupItem | undefined {
  const t = target.getTime();
  const candidates = window.ranges.filter((r) => ms(r.from) <= t && t <= ms(r.to)).sort((a, b) => ms(b.from) - ms(a.from));
  const id = candidates[0]?.base_backup_id;
  return id ? baseBackups.find((b) => b.id === id) : undefined;
}

/** The stretch a time falls in, or the gap that holds it, for a 400 that names the bounds. */
export function locateTime(
  window: RestorableWindow,
  target: Date,
): { in: "span"; span: { from: string; to: string } } | { in: "gap"; gap: { from: string | null; to: string | null } } | { in: "before" | "after" | "none" } {
  const t = target.getTime();
  if (!window.available) return { in: "none" };
  const span = window.spans.find((s) => ms(s.from) <= t && t <= ms(s.to));
  if (span) return { in: "span", span };
  if (t < ms(window.spans[0]!.from)) return { in: "before" };
  if (t > ms(window.latest_restore_time!)) return { in: "after" };
  for (let i = 0; i + 1 < window.spans.length; i++) {
    const a = window.spans[i]!;
    const b = window.spans[i + 1]!;
    if (ms(a.to) < t && t < ms(b.from)) return { in: "gap", gap: { from: a.to, to: b.from } };
  }
  return { in: "none" };
}
