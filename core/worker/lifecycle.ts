import { iso, type Deps } from "../deps.ts";
import { claimJob, failJob, getJobItem, isServiceJob, releaseClaim, retryJob, type JobItem } from "../jobs/jobs.ts";
import { acquireLock, acquireSlot, clusterResource, releaseLock, releaseSlots, renewLock } from "../jobs/locks.ts";
import { enterWait, leaveWait, wakeNext } from "../jobs/waiters.ts";
import { redact, tail } from "../redact.ts";
import { classify, type WorkerFailure } from "../pg/classify.ts";
import { leaseVisibilitySeconds, setVisibility, startHeartbeat, type MessageContext } from "./heartbeat.ts";
import { launchIfLarge } from "./offload.ts";
import { backoffSeconds, type WorkerOptions } from "./options.ts";
import { ignored, lockOwner, lockResource, requeue, toRunReport, type Attempt, type JobRunner, type RunOutcome } from "./runner.ts";

/** A message arriving this much before the job is due is a stale duplicate (the due one is queued). */
const EARLY_SLACK_MS = 5_000;

/**
 * Runs one job for one queue delivery with `runner`: claim, lock, attempt - or classify the failure
 * and retry or fail. Every step that could race another worker is a conditional write, so
 * duplicate and late deliveries are harmless: a job that is finished, or running under a live
 * lease, is acknowledged and left alone.
 */
export async function runClaimed(deps: Deps, runner: JobRunner, read: JobItem, msg: MessageContext | undefined, o: WorkerOptions): Promise<RunOutcome> {
  let job = read;
  const now = deps.now().getTime();
  if (job.state === "completed" || job.state === "failed") {
    await runner.settle?.(deps, job);
    return ignored(`job already ${job.state}`);
  }
  // Same test as claimJob's condition (leases are stored to the second).
  if (job.state === "running" && job.lease_expires_at && job.lease_expires_at >= iso(deps.now())) return ignored("running under a live lease");
  if (job.state === "pending" && job.available_at && Date.parse(job.available_at) - now > EARLY_SLACK_MS) return ignored("not due yet");
  if (job.state === "running" && job.attempts >= job.max_attempts) return abandon(deps, runner, job, o);

  // A pending job takes its turn (the database lock, a slot of its cluster's job cap) before it is
  // claimed: one that finds them held waits, woken by the release, without spending a claim, an
  // attempt or a receive. A lapsed running job is claimed first (runAttempt then waits the same way).
  let turn: Turn | undefined;
  if (job.state === "pending") {
    const owner = lockOwner({ id: job.id, attempts: job.attempts + 1 });
    const took = await takeTurnOrWait(deps, job, owner, o);
    if ("status" in took) return took;
    ({ job, held: turn } = took);
  }

  let claimed: JobItem | undefined;
  try {
    if (o.offload && runner.measure) {
      const launched = await launchIfLarge(deps, runner, job, msg, o, o.offload);
      if (launched?.status === "launched" && turn) {
        // The task takes the turn over (same owner: same attempt) once it starts.
        for (const h of turn) await renewLock(deps, h.resource, h.owner, o.offload.leaseMs);
        turn = undefined;
      }
      if (launched) return launched;
    }
    claimed = await claimJob(deps, job, deps.workerId, o.leaseMs);
    if (!claimed) return ignored("claimed by another worker");
  } finally {
    if (turn && !claimed) await giveBackTurn(deps, job, turn);
  }
  return runAttempt(deps, runner, claimed, msg, o);
}

/**
 * A turn taken for a claim this delivery did not make. When another delivery of the same message
 * claimed the job for the same attempt, the turn is that claim's too (one owner per attempt, so
 * both took it): it stays, and the running attempt gives it back when it ends. Otherwise (the job
 * settled or changed meanwhile) it is given back now.
 */
async function giveBackTurn(deps: Deps, job: JobItem, held: Turn): Promise<void> {
  let now: JobItem | undefined;
  try {
    now = await getJobItem(deps, job.id);
  } catch (err) {
    // Unknown whose the turn is now: kept (it must never be taken from a running attempt); its lease lapses.
    deps.log.warn("could not read the job to give its turn back; its lease will lapse", { job_id: job.id, error: String(err) });
    return;
  }
  if (now?.state === "running" && now.attempts === job.attempts + 1) {
    deps.log.info("another delivery claimed the job; its turn stays with that attempt", { job_id: job.id, attempt: now.attempts });
    return;
  }
  await releaseTurn(deps, job, held);
}

/** One lock an attempt holds while it runs. */
export interface Held {
  resource: string;
  owner: string;
}
/** An attempt's turn: its database's lock and, under a cluster job cap, one slot of its cluster. */
type Turn = [database: Held] | [database: Held, slot: Held];

/**
 * Takes the job's database lock and one of its cluster's job slots for `owner`, both or neither:
 * when the slots are full the lock is given back. Idempotent for the same owner (a task taking
 * over the worker's turn finds it its own). `busy` names what is held by others.
 */
async function takeTurn(deps: Deps, job: JobItem, owner: string, o: WorkerOptions): Promise<{ held: Turn } | { busy: string }> {
  const database = lockResource(job);
  // An earlier attempt of this job (killed, its job lease lapsed) may still hold the lock: taken over.
  if (!(await acquireLock(deps, database, owner, o.leaseMs, `${job.id}#`))) return { busy: database };
  const held: Held = { resource: database, owner };
  // A drill reads the archive and writes to the verification cluster, not to the customer's: it takes none of its slots.
  if (!o.clusterJobCap || isServiceJob(job)) return { held: [held] };
  const slot = await acquireSlot(deps, job.cluster_id, owner, o.clusterJobCap, o.leaseMs);
  if (slot) return { held: [held, { resource: slot, owner }] };
  await releaseTurn(deps, job, [held]);
  return { busy: clusterResource(job.cluster_id) };
}

/**
 * Gives back what an attempt held (every slot its owner holds: a duplicate delivery may have taken
 * a second) and wakes the oldest waiter of each (never throws: leases lapse anyway).
 */
async function releaseTurn(deps: Deps, job: JobItem, [lock, slot]: Turn): Promise<void> {
  try {
    await releaseLock(deps, lock.resource, lock.owner);
    if (slot) await releaseSlots(deps, job.cluster_id, slot.owner);
    await wakeNext(deps, lockResource(job));
    if (slot) await wakeNext(deps, clusterResource(job.cluster_id));
  } catch (err) {
    deps.log.warn("could not release the job's turn; its lease will lapse", { job_id: job.id, error: String(err) });
  }
}

/**
 * The turn of a pending job, or its wait: recorded as a waiter of what is busy (woken by its
 * release, or rechecked by the reaper after `waitRecheckMs`), then looked at once more, since the
 * holder may have released it between the refusal and the record. The message is acknowledged.
 */
async function takeTurnOrWait(deps: Deps, job: JobItem, owner: string, o: WorkerOptions): Promise<{ job: JobItem; held: Turn } | RunOutcome> {
  // A job woken by a release of what it waited on (a cluster slot, say) that now waits on
  // something else (its database's lock) did not use that release: it hands the wake on to the
  // next waiter, or the freed slot would sit idle until the waiters' safety-net recheck.
  const wokenFor = job.waiting_on ?? undefined;
  const passOn = async (waitingOn: string) => {
    if (wokenFor && wokenFor !== waitingOn) await wakeNext(deps, wokenFor).catch(() => undefined);
  };
  let turn = await takeTurn(deps, job, owner, o);
  for (let looks = 0; "busy" in turn && looks < 3; looks++) {
    const waiting = await enterWait(deps, job, turn.busy, o.waitRecheckMs);
    if (!waiting) return ignored("the job changed while it was about to wait");
    const before = turn.busy;
    job = waiting;
    turn = await takeTurn(deps, job, owner, o);
    if ("busy" in turn && turn.busy === before) {
      deps.log.info("job waits its turn", { job_id: job.id, waiting_on: before, waiting_since: job.waiting_since, recheck_at: job.available_at });
      await passOn(before);
      return { status: "waiting", ack: true, reason: `waiting for ${before}` };
    }
  }
  if ("busy" in turn) {
    await passOn(job.waiting_on ?? turn.busy);
    return { status: "waiting", ack: true, reason: `waiting for ${turn.busy}` };
  }
  await leaveWait(deps, job).catch(() => undefined);
  return { job, held: turn.held };
}

/**
 * One attempt of a job this process has claimed (the worker's claim, or the claim a task took
 * over from the worker that launched it): lock, heartbeat, the runner's attempt, and the failure's
 * classification, retry or failure.
 */
export async function runAttempt(deps: Deps, runner: JobRunner, claimed: JobItem, msg: MessageContext | undefined, o: WorkerOptions): Promise<RunOutcome> {
  const job = claimed;
  await setVisibility(deps, msg, leaseVisibilitySeconds(o));
  deps.log.info("job claimed", {
    job_id: job.id,
    backup_id: job.backup_id,
    type: job.type,
    state: claimed.state,
    attempt: claimed.attempts,
    worker_id: claimed.claimed_by,
  });

  const turn = await takeTurn(deps, claimed, lockOwner(claimed), o);
  if ("busy" in turn) return busy(deps, claimed, turn.busy, o);
  const held = turn.held;

  const abort = new AbortController();
  let lost: string | undefined;
  const stop = (why: string) => {
    lost ??= why;
    abort.abort();
  };
  const heartbeat = startHeartbeat({ deps, job: claimed, locks: held, msg, options: o, onLost: stop });
  const cleanups: ((f: { retrying: boolean; error: string }) => Promise<void>)[] = [];
  const attempt: Attempt = { deps, job: claimed, msg, o, signal: abort.signal, abort: stop, secrets: [], onFailure: (fn) => void cleanups.push(fn) };
  try {
    const outcome = await runner.attempt(attempt);
    if (lost && outcome.status !== "completed") return ignored(`claim lost: ${lost}`);
    return outcome;
  } catch (err) {
    const failure = classify(err);
    if (lost) {
      // Another worker owns the job now; what we started is aborted, what it does is its business.
      deps.log.warn("claim lost; attempt abandoned", { job_id: job.id, reason: lost });
      return ignored(`claim lost: ${lost}`);
    }
    return settleFailure(attempt, runner, failure, cleanups);
  } finally {
    await heartbeat.stop();
    await releaseTurn(deps, job, held);
  }
}

/** Records a classified failure: retry with backoff while attempts remain and it is transient, else fail. */
async function settleFailure(
  a: Attempt,
  runner: JobRunner,
  failure: WorkerFailure,
  cleanups: ((f: { retrying: boolean; error: string }) => Promise<void>)[],
): Promise<RunOutcome> {
  const { deps, job, o, msg } = a;
  const error = redact(failure.message, a.secrets);
  const cause = failure.cause === undefined ? undefined : tail(redact(String((failure.cause as Error)?.message ?? failure.cause), a.secrets), 4096);
  const report = toRunReport(failure.report, cause);
  const fields = { job_id: job.id, type: job.type, attempt: job.attempts, classification: failure.classification, error, detail: cause };
  const cleanup = async (retrying: boolean) => {
    for (const fn of cleanups) {
      await fn({ retrying, error }).catch((err: unknown) => deps.log.warn("cleanup after a failed attempt failed", { job_id: job.id, error: String(err) }));
    }
  };

  if (failure.classification === "transient" && job.attempts < job.max_attempts) {
    const delay = backoffSeconds(o, job.attempts);
    const retried = await retryJob(deps, job, error, new Date(deps.now().getTime() + delay * 1000), report);
    if (!retried) return ignored("the claim was lost before the retry");
    await cleanup(true);
    deps.log.warn(`${runner.noun} attempt failed; will retry`, { ...fields, state: "pending", retry_in_seconds: delay });
    return { status: "retrying", ack: await requeue(deps, job.id, delay, msg) };
  }
  const failed = await failJob(deps, job, error, failure.classification, report);
  if (!failed) return ignored("the claim was lost before the failure");
  await cleanup(false);
  deps.log.warn(`${runner.noun} failed`, { ...fields, state: "failed" });
  return { status: "failed", ack: true };
}

/**
 * What the claimed job needs is held by other jobs (a lapsed job claimed again, a task whose
 * turn was taken meanwhile): give the claim back (the attempt is not spent) and wait like a
 * pending job, woken when it is released.
 */
async function busy(deps: Deps, job: JobItem, resource: string, o: WorkerOptions): Promise<RunOutcome> {
  const released = await releaseClaim(deps, job, deps.now());
  if (!released) return ignored("the claim was lost while the lock was busy");
  const took = await takeTurnOrWait(deps, released, lockOwner({ id: job.id, attempts: released.attempts + 1 }), o);
  if ("status" in took) return took;
  // Free again already: it is due now; a fresh delivery runs it (this one's claim was given back).
  await giveBackTurn(deps, took.job, took.held);
  deps.log.info("database lock busy; job returned", { job_id: job.id, resource });
  return { status: "busy", ack: await requeue(deps, job.id, 0, undefined) };
}

/**
 * A job whose worker died on its last attempt (running, lease lapsed, attempts exhausted): fail it
 * and let the runner clean up what the dead attempt may have left.
 */
async function abandon(deps: Deps, runner: JobRunner, job: JobItem, o: WorkerOptions): Promise<RunOutcome> {
  const error = `The ${runner.noun} worker stopped responding during its last attempt.`;
  const failed = await failJob(deps, job, error, "transient");
  if (!failed) return ignored("settled by another worker");
  deps.log.warn(`${runner.noun} failed: the last attempt's worker stopped responding`, { job_id: job.id, attempt: job.attempts });
  await runner.abandoned?.(deps, failed, o);
  return { status: "failed", ack: true };
}
