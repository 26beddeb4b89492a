import { describe, expect, it } from "vitest";
import { allows, conditionOf, jobTransitions, terminalStates, type JobFenced, type TransitionName } from "../../core/jobs/transitions.ts";

// Pure: the job state machine's table, read in memory (jobs.ts sends the same entries to DynamoDB).
const T0 = "2026-01-01T00:00:00.000Z";
const T1 = "2026-01-01T00:05:00.000Z";
const job = (over: Partial<JobFenced> = {}): JobFenced => ({
  state: "pending",
  attempts: 0,
  max_attempts: 3,
  claimed_by: null,
  lease_expires_at: null,
  available_at: T0,
  ...over,
});
const running = (over: Partial<JobFenced> = {}) => job({ state: "running", attempts: 1, claimed_by: "w1", lease_expires_at: T1, available_at: null, ...over });

describe("job transitions (core/jobs/transitions.ts)", () => {
  it("lets a pending job with attempts left be claimed at the attempt the worker read, and no other", () => {
    expect(allows("claim", job(), { expectedAttempts: 0, now: T0 })).toBe(true);
    expect(allows("claim", job(), { expectedAttempts: 1, now: T0 })).toBe(false); // a stale read
    expect(allows("claim", job({ attempts: 3 }), { expectedAttempts: 3, now: T0 })).toBe(false); // attempts spent
  });

  it("lets a running job be claimed again only once its lease has lapsed", () => {
    expect(allows("claim", running(), { expectedAttempts: 1, now: T0 })).toBe(false); // live lease
    expect(allows("claim", running(), { expectedAttempts: 1, now: "2026-01-01T00:06:00.000Z" })).toBe(true);
  });

  it("lets only the claim's owner, at its own attempt, complete, fail, retry, renew or give the claim back", () => {
    for (const t of ["complete", "fail", "retry", "renew", "release"] as TransitionName[]) {
      expect(allows(t, running(), { worker: "w1", expectedAttempts: 1 }), t).toBe(true);
      expect(allows(t, running(), { worker: "w2", expectedAttempts: 1 }), `${t} by another worker`).toBe(false);
      expect(allows(t, running({ attempts: 2 }), { worker: "w1", expectedAttempts: 1 }), `${t} by a stale attempt`).toBe(false);
      expect(allows(t, job(), { worker: null, expectedAttempts: 0 }), `${t} of a pending job`).toBe(false);
    }
  });

  it("never moves a completed or failed job, whoever asks", () => {
    expect(terminalStates).toEqual(["completed", "failed"]);
    for (const state of terminalStates) {
      for (const t of Object.keys(jobTransitions) as TransitionName[]) {
        const finished = running({ state });
        const anything = { worker: "w1", expectedAttempts: 1, now: "2099-01-01T00:00:00.000Z", lease: T1, was: null, from: "w1", to: "w1" };
        expect(allows(t, finished, anything), `${t} from ${state}`).toBe(false);
      }
    }
  });

  it("spends an attempt on a claim, gives it back on a release, and leaves it otherwise", () => {
    expect(jobTransitions.claim.attempts).toBe(1);
    expect(jobTransitions.release.attempts).toBe(-1);
    const others = Object.entries(jobTransitions).filter(([n]) => n !== "claim" && n !== "release" && n !== "reclaim");
    expect(others.map(([, t]) => t.attempts)).toEqual(others.map(() => 0));
  });

  it("lets the reaper move a lapsed job only if the lease and attempt are still the ones it read", () => {
    expect(allows("reapRetry", running(), { lease: T1, expectedAttempts: 1 })).toBe(true);
    expect(allows("reapFail", running(), { lease: T0, expectedAttempts: 1 })).toBe(false); // renewed meanwhile
    expect(allows("requeue", job(), { was: T0 })).toBe(true);
    expect(allows("requeue", job({ available_at: T1 }), { was: T0 })).toBe(false);
  });

  it("hands a claim to a task from the launching worker, or again to the task that already holds it", () => {
    const v = { expectedAttempts: 1, from: "launch:w1", to: "task:t1" };
    expect(allows("handOver", running({ claimed_by: "launch:w1" }), v)).toBe(true);
    expect(allows("handOver", running({ claimed_by: "task:t1" }), v)).toBe(true);
    expect(allows("handOver", running({ claimed_by: "w9" }), v)).toBe(false);
  });

  it("writes the same table as the DynamoDB condition (the claim's, with the values it names)", () => {
    const { condition, values } = conditionOf("claim", { expectedAttempts: 2, now: T0 });
    expect(condition).toBe(
      "(#state = :pending AND #attempts = :expected_attempts AND #attempts < max_attempts) OR " +
        "(#state = :running AND #attempts = :expected_attempts AND #attempts < max_attempts AND lease_expires_at < :now)",
    );
    expect(values).toEqual({ ":pending": "pending", ":running": "running", ":expected_attempts": 2, ":now": T0 });
    expect(conditionOf("complete", { worker: "w1", expectedAttempts: 1 })).toEqual({
      condition: "#state = :running AND claimed_by = :worker AND #attempts = :expected_attempts",
      values: { ":running": "running", ":worker": "w1", ":expected_attempts": 1 },
    });
  });
});
