import { jobStates } from "../contract/jobs.ts";

/**
 * The job state machine, once: which state each transition leaves from, under which fence, and
 * where it goes. jobs.ts turns an entry into the DynamoDB condition of its conditional update
 * (conditionOf); allows() reads the same entry against a job in memory, which is what the unit
 * test exercises. A transition whose fence does not hold changes nothing: another worker got
 * there first, or the message was a late duplicate.
 */
export { jobStates };
export type JobState = (typeof jobStates)[number];

/**
 * What must still hold, besides the state, for a transition to apply:
 * - `attempt`: the job is at the attempt the caller read (`#attempts = :expected_attempts`);
 * - `attempts_left`: it has an attempt left to spend;
 * - `owner`: the caller's claim is the job's (`claimed_by = :worker`);
 * - `lease_lapsed`: the running claim's lease has lapsed (its worker stopped responding);
 * - `lease_read`: the lease is the one the caller read (the reaper: a renewal since wins);
 * - `due_read`: the due time is the one the caller read;
 * - `holder`: the claim is held by the launching worker or already by its task;
 * - `waiting_on`: the pending job still waits on the resource the caller released.
 */
export type Fence = "attempt" | "attempts_left" | "owner" | "lease_lapsed" | "lease_read" | "due_read" | "holder" | "waiting_on";

export interface Transition {
  /** The states it leaves from, each with its fences. */
  from: Partial<Record<JobState, readonly Fence[]>>;
  to: JobState;
  /** What it does to `attempts`: a claim spends one, a claim given back returns it. */
  attempts: -1 | 0 | 1;
}

const owned = { running: ["owner", "attempt"] } as const;

export const jobTransitions = {
  /** pending, or running under a lapsed lease -> running, one more attempt spent. */
  claim: { from: { pending: ["attempt", "attempts_left"], running: ["attempt", "attempts_left", "lease_lapsed"] }, to: "running", attempts: 1 },
  /** The claim's heartbeat, and a multi-phase job's progress line. */
  renew: { from: owned, to: "running", attempts: 0 },
  complete: { from: owned, to: "completed", attempts: 0 },
  /** A transient failure with attempts left: due again later. */
  retry: { from: owned, to: "pending", attempts: 0 },
  fail: { from: owned, to: "failed", attempts: 0 },
  /** The database lock was busy: the claim goes back without spending the attempt. */
  release: { from: owned, to: "pending", attempts: -1 },
  /** The launching worker passes its claim to the task it started (same attempt). */
  handOver: { from: { running: ["attempt", "holder"] }, to: "running", attempts: 0 },
  /** A pending job whose database or cluster slot is held waits its turn (no attempt spent); a release wakes it. */
  wait: { from: { pending: ["attempt"] }, to: "pending", attempts: 0 },
  wake: { from: { pending: ["waiting_on"] }, to: "pending", attempts: 0 },
  /** Work its creator retries itself (retention's deletes): a failed try back to pending, then claimed as its last attempt. */
  defer: { from: owned, to: "pending", attempts: 0 },
  reclaim: { from: { pending: ["attempt"] }, to: "running", attempts: 1 },
  /** The reaper: a pending job whose message was lost is due again now. */
  requeue: { from: { pending: ["due_read"] }, to: "pending", attempts: 0 },
  /** The reaper: a running job whose lease lapsed goes back to pending (attempts left) or fails. */
  reapRetry: { from: { running: ["lease_read", "attempt"] }, to: "pending", attempts: 0 },
  reapFail: { from: { running: ["lease_read", "attempt"] }, to: "failed", attempts: 0 },
} as const satisfies Record<string, Transition>;
export type TransitionName = keyof typeof jobTransitions;

/** What the caller read or holds, which the fences compare the stored job with. */
export interface FenceValues {
  expectedAttempts?: number;
  worker?: string | null;
  now?: string;
  lease?: string | null;
  was?: string | null;
  from?: string;
  to?: string;
  resource?: string;
}

/** The stored fields the fences read. */
export interface JobFenced {
  state: JobState;
  attempts: number;
  max_attempts: number;
  claimed_by: string | null;
  lease_expires_at: string | null;
  available_at: string | null;
  waiting_on?: string | null;
}

const fenceCondition: Record<Fence, string> = {
  attempt: "#attempts = :expected_attempts",
  attempts_left: "#attempts < max_attempts",
  owner: "claimed_by = :worker",
  lease_lapsed: "lease_expires_at < :now",
  lease_read: "lease_expires_at = :lease",
  due_read: "available_at = :was",
  holder: "(claimed_by = :from OR claimed_by = :to)",
  waiting_on: "waiting_on = :resource",
};

const fenceValues: Record<Fence, (v: FenceValues) => Record<string, unknown>> = {
  attempt: (v) => ({ ":expected_attempts": v.expectedAttempts }),
  attempts_left: () => ({}),
  owner: (v) => ({ ":worker": v.worker }),
  lease_lapsed: (v) => ({ ":now": v.now }),
  lease_read: (v) => ({ ":lease": v.lease }),
  due_read: (v) => ({ ":was": v.was }),
  holder: (v) => ({ ":from": v.from, ":to": v.to }),
  waiting_on: (v) => ({ ":resource": v.resource }),
};

const fenceHolds: Record<Fence, (job: JobFenced, v: FenceValues) => boolean> = {
  attempt: (j, v) => j.attempts === v.expectedAttempts,
  attempts_left: (j) => j.attempts < j.max_attempts,
  owner: (j, v) => j.claimed_by === v.worker,
  // ISO-8601 instants compare as strings, as DynamoDB compares them.
  lease_lapsed: (j, v) => j.lease_expires_at !== null && v.now !== undefined && j.lease_expires_at < v.now,
  lease_read: (j, v) => j.lease_expires_at === v.lease,
  due_read: (j, v) => j.available_at === v.was,
  holder: (j, v) => j.claimed_by === v.from || j.claimed_by === v.to,
  waiting_on: (j, v) => j.waiting_on === v.resource,
};

const fromEntries = (t: Transition) => Object.entries(t.from) as [JobState, readonly Fence[]][];

/** The transition's DynamoDB condition and the values it names (`#state`, `#attempts` are the names). */
export function conditionOf(name: TransitionName, v: FenceValues): { condition: string; values: Record<string, unknown> } {
  const t: Transition = jobTransitions[name];
  const values: Record<string, unknown> = {};
  const branches = fromEntries(t).map(([state, fences]) => {
    values[`:${state}`] = state;
    for (const f of fences) Object.assign(values, fenceValues[f](v));
    return [`#state = :${state}`, ...fences.map((f) => fenceCondition[f])].join(" AND ");
  });
  return { condition: branches.length === 1 ? branches[0]! : branches.map((b) => `(${b})`).join(" OR "), values };
}

/** Whether the transition applies to `job` as stored, by the same table (no DynamoDB). */
export function allows(name: TransitionName, job: JobFenced, v: FenceValues): boolean {
  const fences: readonly Fence[] | undefined = (jobTransitions[name] as Transition).from[job.state];
  return fences?.every((f) => fenceHolds[f](job, v)) === true;
}

/** The states no transition leaves: a finished job stays finished. */
export const terminalStates = jobStates.filter((s) => !Object.values(jobTransitions).some((t: Transition) => s in t.from));
