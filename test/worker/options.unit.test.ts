import { describe, expect, it } from "vitest";
import { backoffSeconds, jitter } from "../../core/worker/options.ts";
import { retryDelaySeconds } from "../../core/webhooks/deliver.ts";

/** Retry delays: exponential, capped, spread by jitter so jobs delayed together do not return together. */
const o = { retryBaseSeconds: 30, retryMaxSeconds: 600 };
const lowest = () => 0;
const middle = () => 0.5;
const highest = () => 0.999999;

describe("backoffSeconds (the worker's transient retries)", () => {
  it.each([
    // attempt, random, seconds
    [1, middle, 30],
    [2, middle, 60],
    [3, middle, 120],
    [4, middle, 240],
    [5, middle, 480],
    [6, middle, 600],
    [20, middle, 600],
    [1, lowest, 24],
    [1, highest, 36],
    [5, highest, 576],
    [6, lowest, 600],
    [0, middle, 30],
  ] as const)("attempt %i with random %o: %i s", (attempt, random, seconds) => {
    expect(backoffSeconds(o, attempt, random)).toBe(seconds);
  });

  it("stays within ±20 % of base * 2^(n-1), and under the cap, for any random", () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      for (const r of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999]) {
        const s = backoffSeconds(o, attempt, () => r);
        const base = 30 * 2 ** (attempt - 1);
        expect(s, `attempt ${attempt}, random ${r}`).toBeLessThanOrEqual(Math.min(600, Math.round(base * 1.2)));
        expect(s, `attempt ${attempt}, random ${r}`).toBeGreaterThanOrEqual(Math.min(600, Math.round(base * 0.8)));
      }
    }
  });
});

describe("jitter", () => {
  it.each([
    [100, lowest, 80],
    [100, middle, 100],
    [100, highest, 120],
    [1, lowest, 1],
    [0, middle, 1],
  ] as const)("%i s with random %o: %i s (never below 1 s)", (seconds, random, expected) => {
    expect(jitter(seconds, random)).toBe(expected);
  });
});

describe("retryDelaySeconds (webhook deliveries)", () => {
  const schedule = { backoffSeconds: [60, 300, 1800], jitterFraction: 0.1 };
  it.each([
    [1, middle, 60],
    [2, middle, 300],
    [3, middle, 1800],
    [9, middle, 1800],
    [1, lowest, 54],
    [2, highest, 330],
  ] as const)("attempt %i with random %o: %i s", (attempt, random, seconds) => {
    expect(retryDelaySeconds({ ...schedule, random }, attempt)).toBe(seconds);
  });

  it("without jitter, exactly the schedule", () => {
    expect([1, 2, 3].map((a) => retryDelaySeconds({ ...schedule, jitterFraction: 0, random: Math.random }, a))).toEqual([60, 300, 1800]);
  });
});
