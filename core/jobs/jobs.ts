import { z } from "../zod.ts";
import { jobSchema } from "../contract/jobs.ts";
import { keys } from "../db/keys.ts";
import { getItem, queryPage, setFields, transactWriteIf, updateItemIf, type Page } from "../db/store.ts";
import { jobEvent, outboxPut, type TransactItem } from "../events/outbox.ts";
import { iso, type Deps } from "../deps.ts";
import { conditionOf, jobStates, jobTransitions, type FenceValues, type TransitionName } from "./transitions.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

export { jobStates };
export const jobTypes = [
  "project.backup",
  "project.backup_delete",
  "project.restore",
  "branch.create",
  "instance.destroy",
  "project.export",
  "project.promote_preview",
  "cluster.pitr_drill",
] as const;
export type JobType = (typeof jobTypes)[number];

/**
 * The service's own jobs (the daily point-in-time drill of a cluster's archive): no customer's.
 * They belong to no organization or project a principal can hold (`SERVICE_SCOPE`), are indexed
 * under `keys.serviceJobsIndex` instead of a project's job list, and publish no `job.*` events,
 * so no list, job lookup or webhook of a customer ever shows them.
 */
export const serviceJobTypes: readonly JobType[] = ["cluster.pitr_drill"];
export const SERVICE_SCOPE = "capydb-service";
export const isServiceJob = (job: { type: string }): boolean => (serviceJobTypes as readonly string[]).includes(job.type);
/** A customer job's `job.*` event in the transaction; none for the service's own jobs. */
const jobOutcomeEvent = (
  deps: Pick<Deps, "table" | "now">,
  job: Parameters<typeof jobEvent>[0],
  outcome: Parameters<typeof jobEvent>[1],
  at: string,
): TransactItem[] => (isServiceJob(job) ? [] : [outboxPut(deps, jobEvent(job, outcome, at))]);
/**
 * Types stored under an earlier name: a preview deletion was `branch.delete` until the type
 * became one CapyDB's CLI knows (`instance.destroy`). Such jobs read under the current name.
 */
const formerJobTypes: Record<string, JobType> = { "branch.delete": "instance.destroy" };
const storedJobType = z.preprocess((v) => (typeof v === "string" ? (formerJobTypes[v] ?? v) : v), z.enum(jobTypes));
export const retryClassifications = ["transient", "permanent"] as const;

export type Job = z.infer<typeof jobSchema>;

/** The stored job: the API fields plus what the worker and reaper need. */
export const jobItem = jobSchema.extend({
  type: storedJobType,
  item_type: z.literal("job"),
  database_name: z.string(),
  /**
   * The backup this job makes (project.backup), deletes (project.backup_delete) or restores
   * (project.restore, branch.create of a clone).
   */
  backup_id: z.string().nullable(),
  /** The export this job makes (project.export). */
  export_id: z.string().nullish(),
  schedule_id: z.string().nullable(),
  /** While running: when the claim lapses unless renewed by the heartbeat. */
  lease_expires_at: z.string().nullable(),
  /** While pending: when it is due to run (now, or after a retry delay). */
  available_at: z.string().nullable(),
  /**
   * While pending: what the job waits for (a database lock or its cluster's job slots, held by
   * other jobs) and since when: it is woken when that is released (core/jobs/waiters.ts).
   */
  waiting_on: z.string().nullish(),
  waiting_since: z.string().nullish(),
});
export type JobItem = z.infer<typeof jobItem>;

export function toJob(item: JobItem): Job {
  return jobSchema.parse({ ...item, type: item.type });
}

export const DEFAULT_MAX_ATTEMPTS = 3;

export const lockedResourceFor = (clusterId: string, databaseName: string) => `database:${clusterId}/${databaseName}`;

/** Index attributes for a job in a given state: only pending and running jobs are in gsi2. */
export function jobStateIndex(state: Job["state"], at: string, id: string): Record<string, string | undefined> {
  if (state === "pending" || state === "running") return { gsi2pk: keys.jobStateIndex(state), gsi2sk: `${at}#${id}` };
  return { gsi2pk: undefined, gsi2sk: undefined };
}

/** The full stored item (with keys) for a new pending job. */
export function newJobItem(
  now: Date,
  fields: Pick<JobItem, "id" | "organization_id" | "project_id" | "cluster_id" | "database_name" | "type" | "backup_id"> &
    Partial<Pick<JobItem, "schedule_id" | "max_attempts" | "available_at" | "preview_database_id" | "export_id" | "locked_resource">>,
): Record<string, unknown> & JobItem {
  const at = iso(now);
  const available = fields.available_at ?? at;
  const item: JobItem = {
    item_type: "job",
    preview_database_id: null,
    state: "pending",
    attempts: 0,
    max_attempts: DEFAULT_MAX_ATTEMPTS,
    claimed_at: null,
    claimed_by: null,
    started_at: null,
    completed_at: null,
    locked_resource: lockedResourceFor(fields.cluster_id, fields.database_name),
    retry_classification: null,
    last_exit_code: null,
    last_stdout: null,
    last_stderr: null,
    error: null,
    created_at: at,
    updated_at: at,
    schedule_id: null,
    lease_expires_at: null,
    ...fields,
    available_at: available,
  };
  return {
    ...keys.job(item.id),
    gsi1pk: isServiceJob(item) ? keys.serviceJobsIndex : keys.projectJobsIndex(item.project_id),
    gsi1sk: item.id,
    ...jobStateIndex("pending", available, item.id),
    ...item,
  };
}

/**
 * Creates a job already claimed by `claimedBy` (running, attempt 1 of 1, lease `leaseMs`): work
 * the caller runs itself right away (retention's deletes), so no worker ever picks it up. `also`
 * commits with it (the claim on what the job works on); undefined when any condition failed.
 */
export async function createClaimedJob(
  deps: Db,
  fields: Parameters<typeof newJobItem>[1],
  claimedBy: string,
  leaseMs: number,
  also: TransactItem[] = [],
): Promise<JobItem | undefined> {
  const now = deps.now();
  const at = iso(now);
  const lease = iso(new Date(now.getTime() + leaseMs));
  const pending = newJobItem(now, { ...fields, max_attempts: 1 });
  const job = {
    ...pending,
    ...jobStateIndex("running", lease, pending.id),
    state: "running" as const,
    attempts: 1,
    claimed_by: claimedBy,
    claimed_at: at,
    started_at: at,
    lease_expires_at: lease,
    available_at: null,
  };
  const done = await transactWriteIf(deps, [{ Put: { TableName: deps.table, Item: job, ConditionExpression: "attribute_not_exists(pk)" } }, ...also]);
  return done ? jobItem.parse(job) : undefined;
}

export async function getJobItem(deps: Db, id: string): Promise<JobItem | undefined> {
  return getItem(deps, jobItem, keys.job(id));
}

/** Newest first. */
export async function listJobs(deps: Db, projectId: string, limit: number, cursor?: string): Promise<Page<JobItem>> {
  return queryPage(
    deps,
    jobItem,
    {
      IndexName: "gsi1",
      KeyConditionExpression: "gsi1pk = :p",
      ExpressionAttributeValues: { ":p": keys.projectJobsIndex(projectId) },
      ScanIndexForward: false,
      Limit: limit,
    },
    cursor,
  );
}

// ---------------------------------------------------------------------------------------------
// State machine (transitions.ts). Every transition is a conditional update whose condition the
// table gives; a transition whose condition fails (another worker got there first, a late
// duplicate message) returns undefined.

async function transition(
  deps: Db,
  job: Pick<JobItem, "id" | "attempts">,
  name: TransitionName,
  fields: Record<string, unknown>,
  fence: FenceValues,
  /** Written in the same transaction (the job's outbox event, the backup it settles): all or nothing. */
  also: TransactItem[] = [],
): Promise<JobItem | undefined> {
  const t = jobTransitions[name];
  const { condition, values } = conditionOf(name, fence);
  const set = setFields({ ...fields, state: t.to, ...(t.attempts ? { attempts: job.attempts + t.attempts } : {}) });
  const id = job.id;
  const update = {
    Key: keys.job(id),
    ...set,
    ConditionExpression: `attribute_exists(pk) AND (${condition})`,
    // DynamoDB refuses names an expression does not use: only those the condition names.
    ExpressionAttributeNames: {
      ...set.ExpressionAttributeNames,
      ...(condition.includes("#state") ? { "#state": "state" } : {}),
      ...(condition.includes("#attempts") ? { "#attempts": "attempts" } : {}),
    },
    ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ...values },
  };
  if (!also.length) return updateItemIf(deps, jobItem, update);
  const done = await transactWriteIf(deps, [{ Update: { TableName: deps.table, ...update, UpdateExpression: update.UpdateExpression! } }, ...also]);
  return done ? getJobItem(deps, id) : undefined;
}

/**
 * Claims a job: pending (or running under a lapsed lease) -> running, attempts + 1. Undefined
 * when the job is not claimable (running under a live lease, finished, attempts exhausted).
 */
export async function claimJob(deps: Db, job: JobItem, workerId: string, leaseMs: number): Promise<JobItem | undefined> {
  const now = deps.now();
  const lease = iso(new Date(now.getTime() + leaseMs));
  return transition(
    deps,
    job,
    "claim",
    {
      claimed_by: workerId,
      claimed_at: iso(now),
      started_at: job.started_at ?? iso(now),
      lease_expires_at: lease,
      available_at: null,
      waiting_on: undefined,
      waiting_since: undefined,
      updated_at: iso(now),
      ...jobStateIndex("running", lease, job.id),
    },
    { expectedAttempts: job.attempts, now: iso(now) },
  );
}

/** What proves the caller still owns the claim it made. */
const owner = (job: JobItem): FenceValues => ({ worker: job.claimed_by, expectedAttempts: job.attempts });

export async function renewJobLease(deps: Db, job: JobItem, leaseMs: number): Promise<JobItem | undefined> {
  const now = deps.now();
  const lease = iso(new Date(now.getTime() + leaseMs));
  return transition(deps, job, "renew", { lease_expires_at: lease, updated_at: iso(now), ...jobStateIndex("running", lease, job.id) }, owner(job));
}

export interface RunReport {
  last_exit_code?: number | null;
  last_stdout?: string | null;
  last_stderr?: string | null;
}

/**
 * running -> completed, with its `job.completed` event in the same transaction, and `also` (the
 * backup the job completes, that backup's own event) with it: all commit together or none does.
 * A completed job has no `error` and no `retry_classification` (both describe a failure, and an
 * earlier attempt's failure is not the job's outcome); `attempts` still shows how many it took.
 */
export async function completeJob(deps: Db, job: JobItem, report: RunReport = {}, also: TransactItem[] = []): Promise<JobItem | undefined> {
  const now = iso(deps.now());
  return transition(
    deps,
    job,
    "complete",
    {
      ...report,
      completed_at: now,
      updated_at: now,
      lease_expires_at: null,
      error: null,
      retry_classification: null,
      ...jobStateIndex("completed", now, job.id),
    },
    owner(job),
    [...jobOutcomeEvent(deps, job, { state: "completed" }, now), ...also],
  );
}

/**
 * A running multi-phase job's progress (a promote's phases, shown in `last_stdout`), fenced on the
 * claim: undefined when the caller no longer owns the job.
 */
export async function recordJobProgress(deps: Db, job: JobItem, report: RunReport): Promise<JobItem | undefined> {
  return transition(deps, job, "renew", { ...report, updated_at: iso(deps.now()) }, owner(job));
}

/** Transient failure with attempts left: back to pending, due again at `availableAt`. */
export async function retryJob(deps: Db, job: JobItem, error: string, availableAt: Date, report: RunReport = {}): Promise<JobItem | undefined> {
  const now = iso(deps.now());
  const due = iso(availableAt);
  return transition(
    deps,
    job,
    "retry",
    {
      ...report,
      error,
      retry_classification: "transient",
      lease_expires_at: null,
      available_at: due,
      updated_at: now,
      ...jobStateIndex("pending", due, job.id),
    },
    owner(job),
  );
}

export async function failJob(
  deps: Db,
  job: JobItem,
  error: string,
  classification: "transient" | "permanent",
  report: RunReport = {},
  /** Written in the same transaction (what the failure leaves for a later retry). */
  also: TransactItem[] = [],
): Promise<JobItem | undefined> {
  const now = iso(deps.now());
  const event = jobOutcomeEvent(deps, job, { state: "failed", error, retry_classification: classification }, now);
  return transition(
    deps,
    job,
    "fail",
    {
      ...report,
      error,
      retry_classification: classification,
      completed_at: now,
      lease_expires_at: null,
      available_at: null,
      updated_at: now,
      ...jobStateIndex("failed", now, job.id),
    },
    owner(job),
    [...event, ...also],
  );
}

/**
 * Gives a claim back without spending the attempt (the database lock was busy): running ->
 * pending, attempts - 1, due again at `availableAt`.
 */
export async function releaseClaim(deps: Db, job: JobItem, availableAt: Date): Promise<JobItem | undefined> {
  const now = iso(deps.now());
  const due = iso(availableAt);
  return transition(
    deps,
    job,
    "release",
    {
      lease_expires_at: null,
      available_at: due,
      updated_at: now,
      ...jobStateIndex("pending", due, job.id),
    },
    owner(job),
  );
}

/**
 * A pending job that found what it needs held by other jobs waits its turn: it stays pending,
 * recorded as waiting on `resource` since `since`, due again only at `recheckAt` (the safety net
 * should no release ever wake it). No claim, no attempt spent. Fenced on the attempt read, so a
 * job claimed meanwhile is left alone.
 */
export async function markJobWaiting(deps: Db, job: JobItem, resource: string, since: string, recheckAt: Date): Promise<JobItem | undefined> {
  const now = iso(deps.now());
  const due = iso(recheckAt);
  return transition(
    deps,
    job,
    "wait",
    { waiting_on: resource, waiting_since: since, available_at: due, updated_at: now, ...jobStateIndex("pending", due, job.id) },
    { expectedAttempts: job.attempts },
  );
}

/** Wakes a job waiting on `resource`: due now. Undefined when it no longer waits on it. */
export async function wakeJob(deps: Db, jobId: string, resource: string): Promise<JobItem | undefined> {
  const now = iso(deps.now());
  return transition(deps, { id: jobId, attempts: 0 }, "wake", { available_at: now, updated_at: now, ...jobStateIndex("pending", now, jobId) }, { resource });
}

/**
 * Work that its creator retries itself (retention's deletes: the dispatcher's sweep, not the
 * queue): a failed try goes back to `pending` with its error and retry time, out of the queue's
 * index (nothing sends it to a worker: the sweep comes back to it), and without an event. One job
 * for all the tries, announced once, when it completes or fails for good: retrying is the
 * service's own business.
 */
export async function deferOwnJob(deps: Db, job: JobItem, error: string, retryAt: Date, also: TransactItem[] = []): Promise<JobItem | undefined> {
  const now = iso(deps.now());
  return transition(
    deps,
    job,
    "defer",
    { error, retry_classification: "transient", lease_expires_at: null, available_at: iso(retryAt), updated_at: now, gsi2pk: undefined, gsi2sk: undefined },
    owner(job),
    also,
  );
}

/**
 * Claims a job deferred by `deferOwnJob` for its next try, as its last attempt (attempts + 1 of
 * attempts + 1): a try whose owner dies is failed by the reaper, never handed to a worker.
 */
export async function reclaimOwnJob(deps: Db, job: JobItem, claimedBy: string, leaseMs: number, also: TransactItem[] = []): Promise<JobItem | undefined> {
  const now = deps.now();
  const lease = iso(new Date(now.getTime() + leaseMs));
  return transition(
    deps,
    job,
    "reclaim",
    {
      max_attempts: job.attempts + 1,
      claimed_by: claimedBy,
      claimed_at: iso(now),
      lease_expires_at: lease,
      available_at: null,
      updated_at: iso(now),
      ...jobStateIndex("running", lease, job.id),
    },
    { expectedAttempts: job.attempts },
    also,
  );
}

// ---------------------------------------------------------------------------------------------
// The reaper's transitions: the same state machine, fenced on what the reaper read instead of on
// an ownership claim.

/** A pending job whose message was lost: due again now (so it is sent at most once per grace period). */
export async function requeuePendingJob(deps: Db, job: JobItem): Promise<JobItem | undefined> {
  const now = iso(deps.now());
  return transition(deps, job, "requeue", { available_at: now, updated_at: now, ...jobStateIndex("pending", now, job.id) }, { was: job.available_at });
}

/**
 * A running job whose lease lapsed (its worker stopped responding): back to pending while it has
 * attempts left, else failed. Fenced on the lease and attempt the reaper read, so a worker that
 * renewed or finished meanwhile wins.
 */
export async function reapLapsedJob(deps: Db, job: JobItem): Promise<{ outcome: "retried" | "failed"; job: JobItem } | undefined> {
  const now = iso(deps.now());
  const stopped = `the worker stopped responding (its lease expired at ${job.lease_expires_at})`;
  const fence: FenceValues = { lease: job.lease_expires_at, expectedAttempts: job.attempts };
  if (job.attempts < job.max_attempts) {
    const retried = await transition(
      deps,
      job,
      "reapRetry",
      {
        error: `${stopped}; retrying`,
        retry_classification: "transient",
        lease_expires_at: null,
        available_at: now,
        updated_at: now,
        ...jobStateIndex("pending", now, job.id),
      },
      fence,
    );
    return retried && { outcome: "retried", job: retried };
  }
  const failed = await transition(
    deps,
    job,
    "reapFail",
    {
      error: `${stopped}; no attempts left`,
      retry_classification: "transient",
      completed_at: now,
      lease_expires_at: null,
      available_at: null,
      updated_at: now,
      ...jobStateIndex("failed", now, job.id),
    },
    fence,
    jobOutcomeEvent(deps, job, { state: "failed", error: `${stopped}; no attempts left`, retry_classification: "transient" }, now),
  );
  return failed && { outcome: "failed", job: failed };
}

/**
 * Passes a running claim from `from` (the worker that claimed the job to launch a task) to `to`
 * (the task), with a new lease: same attempt, not spent again. The launching worker and the task
 * both call it, in either order, so it also succeeds when `to` already holds the claim. Undefined
 * when the claim moved on (lapsed and claimed again, or settled).
 */
export async function handOverClaim(deps: Db, job: JobItem, from: string, to: string, leaseMs: number): Promise<JobItem | undefined> {
  const now = deps.now();
  const lease = iso(new Date(now.getTime() + leaseMs));
  return transition(
    deps,
    job,
    "handOver",
    { claimed_by: to, lease_expires_at: lease, updated_at: iso(now), ...jobStateIndex("running", lease, job.id) },
    { expectedAttempts: job.attempts, from, to },
  );
}
