import { describe, expect, it } from "vitest";
import { dispatchWindow, floorMinute, indexRanges, occurrence } from "../../core/dispatch/scheduler.ts";

/** The dispatcher's pure time arithmetic: which minutes a tick covers, which index ranges it reads, when a schedule was due. */
const at = (s: string) => new Date(s);
const iso = (d: Date | undefined) => d?.toISOString().replace(".000", "");

describe("dispatchWindow: the minutes a tick covers, (from, to]", () => {
  it.each([
    ["first tick ever: its own minute", undefined, "2026-11-26T02:15:42Z", ["2026-11-26T02:14:00Z", "2026-11-26T02:15:00Z"]],
    ["next minute", "2026-11-26T02:14:00Z", "2026-11-26T02:15:05Z", ["2026-11-26T02:14:00Z", "2026-11-26T02:15:00Z"]],
    ["a tick missed: both minutes", "2026-11-26T02:13:00Z", "2026-11-26T02:15:59Z", ["2026-11-26T02:13:00Z", "2026-11-26T02:15:00Z"]],
    ["across midnight", "2026-11-26T23:58:00Z", "2026-11-27T00:01:10Z", ["2026-11-26T23:58:00Z", "2026-11-27T00:01:00Z"]],
    ["a watermark mid-minute is floored", "2026-11-26T02:13:30Z", "2026-11-26T02:15:00Z", ["2026-11-26T02:13:00Z", "2026-11-26T02:15:00Z"]],
    ["exactly one day of outage: one day", "2026-11-25T02:15:00Z", "2026-11-26T02:15:00Z", ["2026-11-25T02:15:00Z", "2026-11-26T02:15:00Z"]],
    ["three days of outage: the last day only", "2026-11-23T10:00:00Z", "2026-11-26T02:15:30Z", ["2026-11-25T02:15:00Z", "2026-11-26T02:15:00Z"]],
  ] as const)("%s", (_what, watermark, now, [from, to]) => {
    const w = dispatchWindow(watermark ? at(watermark) : undefined, at(now));
    expect([iso(w?.from), iso(w?.to)]).toEqual([from, to]);
  });

  it.each([
    ["same minute as the watermark", "2026-11-26T02:15:00Z", "2026-11-26T02:15:59Z"],
    ["a clock behind the watermark", "2026-11-26T02:20:00Z", "2026-11-26T02:15:00Z"],
  ])("nothing to do: %s", (_what, watermark, now) => {
    expect(dispatchWindow(at(watermark), at(now))).toBeUndefined();
  });

  it("floorMinute drops seconds and milliseconds", () => {
    expect(iso(floorMinute(at("2026-11-26T02:15:59.999Z")))).toBe("2026-11-26T02:15:00Z");
  });
});

describe("indexRanges: the schedule index (HH:MM#sch) a window reads", () => {
  const w = (from: string, to: string) => ({ from: at(from), to: at(to) });
  it.each([
    ["one minute", w("2026-11-26T02:14:00Z", "2026-11-26T02:15:00Z"), [["02:15#", "02:15#~"]]],
    ["a few minutes (from is exclusive)", w("2026-11-26T02:10:00Z", "2026-11-26T02:15:00Z"), [["02:11#", "02:15#~"]]],
    ["the first minute of the day", w("2026-11-26T23:59:00Z", "2026-11-27T00:00:00Z"), [["00:00#", "00:00#~"]]],
    ["the last minute of the day", w("2026-11-26T23:58:00Z", "2026-11-26T23:59:00Z"), [["23:59#", "23:59#~"]]],
    [
      "wrapping past midnight: two ranges",
      w("2026-11-26T23:57:00Z", "2026-11-27T00:02:00Z"),
      [
        ["23:58#", "23:59#~"],
        ["00:00#", "00:02#~"],
      ],
    ],
    // In the order the minutes happened, so a tick that runs out of time can save how far it got.
    [
      "a whole day: every minute once, oldest first",
      w("2026-11-25T02:15:00Z", "2026-11-26T02:15:00Z"),
      [
        ["02:16#", "23:59#~"],
        ["00:00#", "02:15#~"],
      ],
    ],
    ["a whole day ending at 23:59: one range", w("2026-11-25T23:59:00Z", "2026-11-26T23:59:00Z"), [["00:00#", "23:59#~"]]],
    [
      "a day less a minute: wraps, and skips only the window's start",
      w("2026-11-25T02:16:00Z", "2026-11-26T02:15:00Z"),
      [
        ["02:17#", "23:59#~"],
        ["00:00#", "02:15#~"],
      ],
    ],
  ] as const)("%s", (_what, window, ranges) => {
    expect(indexRanges(window)).toEqual(ranges);
  });

  it("every minute of a window falls in exactly one range, and no other minute does", () => {
    const key = (d: Date) => `${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}#sch_x`;
    for (const [from, minutes] of [
      ["2026-11-26T23:50:00Z", 20],
      ["2026-11-26T10:00:00Z", 7],
      ["2026-11-26T00:00:00Z", 1439],
    ] as const) {
      const window = { from: at(from), to: new Date(at(from).getTime() + minutes * 60_000) };
      const ranges = indexRanges(window);
      for (let m = 0; m < 1440; m++) {
        const d = new Date(Date.UTC(2026, 10, 26, 0, m));
        const inWindow = Array.from({ length: minutes }, (_, i) => key(new Date(window.from.getTime() + (i + 1) * 60_000))).includes(key(d));
        const hits = ranges.filter(([lo, hi]) => key(d) >= lo && key(d) <= hi).length;
        expect(hits, `${from} +${minutes} min: ${key(d)}`).toBe(inWindow ? 1 : 0);
      }
    }
  });
});

describe("occurrence: the instant a schedule at HH:MM was due, at or before the window's end", () => {
  it.each([
    ["due this very minute", "2026-11-26T02:15:00Z", 2, 15, "2026-11-26T02:15:00Z"],
    ["earlier today", "2026-11-26T02:15:00Z", 1, 0, "2026-11-26T01:00:00Z"],
    ["later in the day: yesterday's", "2026-11-26T02:15:00Z", 23, 59, "2026-11-25T23:59:00Z"],
    ["a minute later: yesterday's", "2026-11-26T02:15:00Z", 2, 16, "2026-11-25T02:16:00Z"],
    ["just after midnight, due before it", "2026-11-27T00:01:00Z", 23, 58, "2026-11-26T23:58:00Z"],
    ["just after midnight, due at midnight", "2026-11-27T00:01:00Z", 0, 0, "2026-11-27T00:00:00Z"],
    ["across a month's end", "2026-12-01T00:00:00Z", 12, 0, "2026-11-30T12:00:00Z"],
    ["across a year's end", "2027-01-01T00:30:00Z", 23, 0, "2026-12-31T23:00:00Z"],
    ["leap day", "2028-03-01T00:10:00Z", 6, 0, "2028-02-29T06:00:00Z"],
  ] as const)("%s", (_what, windowEnd, hour, minute, expected) => {
    expect(iso(occurrence(at(windowEnd), hour, minute))).toBe(expected);
  });
});
