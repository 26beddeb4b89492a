import { z } from "../zod.ts";
import { keys, ttlAt } from "../db/keys.ts";
import { deleteItemIf, putItemIf, queryAll } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { getJobItem, markJobWaiting, wakeJob, type JobItem } from "./jobs.ts";
import { enqueueJobs } from "./queue.ts";

/**
 * Jobs waiting their turn. A job that finds its database locked by another job, or its cluster at
 * its job cap, does not poll: it records itself as a waiter of that resource (in arrival order),
 * stays `pending` without a claim, and its message is acknowledged. The job that releases the
 * resource wakes the oldest waiter (marks it due, sends it a message). Nothing here spends an
 * attempt, a claim or an SQS receive, and a wait can last longer than SQS's 15-minute delay.
 *
 * The safety net: a waiting job is due again at its recheck time anyway, so the dispatcher's
 * reaper sends it again if no release ever woke it (the holder crashed, a wake message was lost).
 */
type Db = Pick<Deps, "ddb" | "table" | "now">;

const waiterItem = z.object({ job_id: z.string(), resource: z.string(), since: z.string() });

/**
 * Records `job` as waiting for `resource` (keeping its place when it already waited on it) and
 * marks the job so. Undefined when the job changed meanwhile (claimed by another delivery).
 */
export async function enterWait(deps: Db, job: JobItem, resource: string, recheckMs: number): Promise<JobItem | undefined> {
  const since = job.waiting_on === resource && job.waiting_since ? job.waiting_since : iso(deps.now());
  const recheck = new Date(deps.now().getTime() + recheckMs);
  await putItemIf(deps, {
    ...keys.waiter(resource, since, job.id),
    item_type: "waiter",
    job_id: job.id,
    resource,
    since,
    // A day past the recheck: records of jobs that went away are removed by DynamoDB's TTL.
    ttl: ttlAt(recheck) + 86_400,
  });
  return markJobWaiting(deps, job, resource, since, recheck);
}

/** Removes `job`'s waiter record (it got its turn, or was woken by the safety net and went ahead). */
export async function leaveWait(deps: Db, job: Pick<JobItem, "id" | "waiting_on" | "waiting_since">): Promise<void> {
  if (!job.waiting_on || !job.waiting_since) return;
  await deleteItemIf(deps, keys.waiter(job.waiting_on, job.waiting_since, job.id));
}

/**
 * Wakes the oldest job still waiting for `resource`: its record is removed, the job marked due
 * and sent a message. Records of jobs that no longer wait (finished, or gone ahead) are removed on
 * the way, so one release always wakes a job that can use it. Returns the job woken, if any.
 */
export async function wakeNext(deps: Db & Pick<Deps, "sqs" | "queueUrl" | "log">, resource: string): Promise<string | undefined> {
  for (let scanned = 0; scanned < 50; ) {
    const waiters = await queryAll(
      deps,
      waiterItem,
      { KeyConditionExpression: "pk = :pk", ExpressionAttributeValues: { ":pk": keys.waiters(resource) }, ConsistentRead: true, Limit: 10 },
      10,
    );
    if (!waiters.length) return undefined;
    for (const w of waiters) {
      scanned++;
      // Whoever removes the record wakes the job: two releases never wake one job twice.
      if (!(await deleteItemIf(deps, keys.waiter(resource, w.since, w.job_id), { condition: "attribute_exists(pk)" }))) continue;
      const woken = await wakeJob(deps, w.job_id, resource);
      if (!woken) continue;
      try {
        await enqueueJobs(deps, [w.job_id]);
      } catch (err) {
        // Due now: the reaper sends it after its grace period.
        deps.log.warn("could not send a woken job its message; the reaper will", { job_id: w.job_id, resource, error: String(err) });
      }
      deps.log.info("job woken: its turn came", { job_id: w.job_id, resource, waited_since: w.since });
      return w.job_id;
    }
  }
  return undefined;
}

/** The jobs waiting for `resource`, oldest first (operators' view, tests). */
export async function listWaiters(deps: Db, resource: string): Promise<JobItem[]> {
  const waiters = await queryAll(deps, waiterItem, {
    KeyConditionExpression: "pk = :pk",
    ExpressionAttributeValues: { ":pk": keys.waiters(resource) },
    ConsistentRead: true,
  });
  return (await Promise.all(waiters.map((w) => getJobItem(deps, w.job_id)))).filter((j): j is JobItem => j !== undefined);
}
