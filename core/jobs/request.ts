import { z } from "../zod.ts";
import { keys, ttlAt } from "../db/keys.ts";
import { getItem, transactWriteIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import type { TransactItem } from "../events/outbox.ts";
import { getJobItem, type JobItem } from "./jobs.ts";
import { enqueueCommitted } from "./queue.ts";

/**
 * How a request that starts a job is committed (an on-demand backup, an export): the item the job
 * will make, pending (a Backup, an Export), the pending Job, the request's audit event and, with an
 * Idempotency-Key, the key's record, all in one transaction; then the job is sent to the queue.
 * A failed send leaves the job committed and due, and the dispatcher's reaper enqueues it, so the
 * caller answers its job either way.
 */
type Db = Pick<Deps, "ddb" | "table" | "now">;

/** An Idempotency-Key and the hash of the request it came with. */
export interface Idempotency {
  key: string;
  requestHash: string;
}

const idempotencyItem = z.object({ request_hash: z.string(), job_id: z.string(), expires_at: z.string() });
const IDEMPOTENCY_MS = 24 * 3600 * 1000;
const DIFFERENT_BODY = "Idempotency-Key was already used with a different request body";

/**
 * The job a live Idempotency-Key already answered (the same key and body within 24 h), so the
 * caller can return it before building anything; a 409 when the key came with another body.
 */
export async function replayIdempotent(deps: Db, projectId: string, idem: Idempotency | undefined): Promise<JobItem | undefined> {
  if (!idem) return undefined;
  const previous = await getItem(deps, idempotencyItem, keys.idempotency(projectId, idem.key));
  if (!previous || Date.parse(previous.expires_at) <= deps.now().getTime()) return undefined;
  if (previous.request_hash !== idem.requestHash) throw new AppError("conflict", DIFFERENT_BODY);
  return getJobItem(deps, previous.job_id);
}

export interface JobRequest {
  projectId: string;
  /** The stored item (with its keys) the job will make; written only if no item has its keys. */
  item: Record<string, unknown>;
  /** The stored pending job (`newJobItem`). */
  job: Record<string, unknown> & JobItem;
  /** The request's audit event (`auditItem`), committed with the rest. */
  audit?: TransactItem;
  idempotency?: Idempotency;
}

/**
 * Commits the request's writes in one transaction and enqueues the job. `created` is false when
 * a concurrent request with the same Idempotency-Key (and body) won the race: its job is answered.
 */
export async function commitJobRequest(deps: Db & Pick<Deps, "sqs" | "queueUrl" | "log">, req: JobRequest): Promise<{ job: JobItem; created: boolean }> {
  const now = deps.now();
  const writes: TransactItem[] = [
    { Put: { TableName: deps.table, Item: req.item, ConditionExpression: "attribute_not_exists(pk)" } },
    { Put: { TableName: deps.table, Item: req.job, ConditionExpression: "attribute_not_exists(pk)" } },
  ];
  if (req.audit) writes.push(req.audit);
  if (req.idempotency) {
    const until = new Date(now.getTime() + IDEMPOTENCY_MS);
    writes.push({
      Put: {
        TableName: deps.table,
        Item: {
          ...keys.idempotency(req.projectId, req.idempotency.key),
          request_hash: req.idempotency.requestHash,
          job_id: req.job.id,
          expires_at: iso(until),
          ttl: ttlAt(until),
        },
        ConditionExpression: "attribute_not_exists(pk) OR expires_at < :now",
        ExpressionAttributeValues: { ":now": iso(now) },
      },
    });
  }
  if (!(await confirmCommitted(deps, req.job.id, () => transactWriteIf(deps, writes), true))) {
    // The item and the job have fresh ids, so it is the idempotency record's condition that
    // failed: two requests raced with the same key, and the other one won. Answer the winner's
    // job (contention was already retried by the store).
    if (!req.idempotency) throw new AppError("conflict", "the item changed concurrently");
    const previous = await getItem(deps, idempotencyItem, keys.idempotency(req.projectId, req.idempotency.key));
    if (previous?.request_hash === req.idempotency.requestHash) {
      const job = await getJobItem(deps, previous.job_id);
      if (job) return { job, created: false };
    }
    if (previous) throw new AppError("conflict", DIFFERENT_BODY);
    throw new AppError("conflict", "a request with this Idempotency-Key is already being processed; retry it", { retryAfterSeconds: 1 });
  }
  await enqueueCommitted(deps, req.job.id);
  return { job: jobFromRecord(req.job), created: true };
}

/**
 * Runs `commit`, the transaction that writes job `jobId` (and what starts with it), and returns
 * its result. When DynamoDB answered none of its sends (the store's 503 after resending it with its
 * ClientRequestToken), the job is read back: there, the transaction committed and `committed` is
 * returned, so the caller answers 202 with the job; absent, nothing was written and the 503
 * stands. A 503 never hides a committed job, and a client that retries it makes no second one.
 */
export async function confirmCommitted<T>(deps: Db, jobId: string, commit: () => Promise<T>, committed: T): Promise<T> {
  try {
    return await commit();
  } catch (err) {
    if (!(err instanceof AppError && err.code === "unavailable")) throw err;
    const written = await getJobItem(deps, jobId).catch(() => undefined);
    if (!written) throw err;
    return committed;
  }
}

/** The job without its table keys, as the rest of the code reads jobs. */
export function jobFromRecord(record: Record<string, unknown>): JobItem {
  const { pk: _pk, sk: _sk, gsi1pk: _a, gsi1sk: _b, gsi2pk: _c, gsi2sk: _d, ...rest } = record;
  return rest as JobItem;
}
