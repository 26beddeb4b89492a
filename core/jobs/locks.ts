import { z } from "../zod.ts";
import { keys, ttlAt } from "../db/keys.ts";
import { deleteItemIf, getItem, putItemIf, queryAll, setFields, updateItemIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

export const lockItem = z.object({
  item_type: z.literal("lock"),
  resource: z.string(),
  owner: z.string(),
  lease_expires_at: z.string(),
  acquired_at: z.string(),
  ttl: z.number(),
});
export type Lock = z.infer<typeof lockItem>;

/**
 * Takes the exclusive lock on `resource` for `owner` (a job id, or `<job id>#<attempt>`) until the
 * lease lapses. True when taken (or already held by the same owner), false when another owner
 * holds a live lease. `supersedes`: an owner prefix whose lock is taken over even under a live
 * lease: a job's new attempt takes over what its earlier, dead attempt held (the job item is the
 * fence: that attempt has lost the job, and its renewals now fail), without waiting for the lock's
 * lease, renewed a moment after the job's, to lapse too.
 */
export async function acquireLock(deps: Db, resource: string, owner: string, leaseMs: number, supersedes?: string): Promise<boolean> {
  const now = deps.now();
  const lease = new Date(now.getTime() + leaseMs);
  return putItemIf(
    deps,
    {
      ...keys.lock(resource),
      item_type: "lock",
      resource,
      owner,
      lease_expires_at: iso(lease),
      acquired_at: iso(now),
      // TTL is a safety net only (DynamoDB deletes lazily); the lease decides.
      ttl: ttlAt(lease) + 3600,
    },
    {
      condition: `attribute_not_exists(pk) OR lease_expires_at < :now OR #owner = :owner${supersedes ? " OR begins_with(#owner, :supersedes)" : ""}`,
      names: { "#owner": "owner" },
      values: { ":now": iso(now), ":owner": owner, ...(supersedes ? { ":supersedes": supersedes } : {}) },
    },
  );
}

/** Extends the lease; false when the lock is no longer ours. */
export async function renewLock(deps: Db, resource: string, owner: string, leaseMs: number): Promise<boolean> {
  const lease = new Date(deps.now().getTime() + leaseMs);
  const set = setFields({ lease_expires_at: iso(lease), ttl: ttlAt(lease) + 3600 });
  const renewed = await updateItemIf(deps, lockItem, {
    Key: keys.lock(resource),
    ...set,
    ConditionExpression: "#owner = :owner",
    ExpressionAttributeNames: { ...set.ExpressionAttributeNames, "#owner": "owner" },
    ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":owner": owner },
  });
  return renewed !== undefined;
}

/** Deletes the lock under `condition`; false when the condition did not hold. */
function deleteLock(deps: Db, resource: string, condition: string, values: Record<string, unknown>): Promise<boolean> {
  return deleteItemIf(deps, keys.lock(resource), { condition, names: { "#owner": "owner" }, values });
}

/** Releases the lock if `owner` holds it (idempotent). */
export async function releaseLock(deps: Db, resource: string, owner: string): Promise<void> {
  await deleteLock(deps, resource, "#owner = :owner", { ":owner": owner });
}

/**
 * Deletes the lock a dead job held, only while it is still that job's (owner `<job id>` or, as
 * the worker names it per attempt, `<job id>#<attempt>`) and its lease has lapsed: a new run of
 * the same job that took the lock afresh keeps it.
 */
export function releaseLapsedLock(deps: Db, resource: string, jobId: string): Promise<boolean> {
  return deleteLock(deps, resource, "(#owner = :job OR begins_with(#owner, :attempt)) AND lease_expires_at < :now", {
    ":job": jobId,
    ":attempt": `${jobId}#`,
    ":now": iso(deps.now()),
  });
}

export async function getLock(deps: Db, resource: string): Promise<Lock | undefined> {
  return getItem(deps, lockItem, keys.lock(resource));
}

/** The resource a cluster's job cap guards: jobs wait on it when every slot is held. */
export const clusterResource = (clusterId: string) => `cluster:${clusterId}`;
const slotResource = (clusterId: string, n: number) => `cluster:${clusterId}#slot${n}`;

/**
 * Takes one of the cluster's `cap` job slots for `owner` (each slot a lock with a lease, renewed
 * and released as the database lock is): the slot `owner` already holds if any, else a free or
 * lapsed one. Returns the slot's resource, or undefined when all `cap` are held by live leases.
 * One Query reads every slot; each take is a conditional write, so two jobs never share a slot.
 */
export async function acquireSlot(deps: Db, clusterId: string, owner: string, cap: number, leaseMs: number): Promise<string | undefined> {
  const held = await slotsOf(deps, clusterId);
  const now = iso(deps.now());
  const byResource = new Map(held.map((l) => [l.resource, l]));
  const slots = Array.from({ length: cap }, (_, n) => slotResource(clusterId, n));
  const mine = slots.find((r) => byResource.get(r)?.owner === owner);
  // Free slots in a random order: jobs arriving together do not all try slot 0 first.
  const free = slots.filter((r) => r !== mine && (!byResource.has(r) || byResource.get(r)!.lease_expires_at < now)).sort(() => Math.random() - 0.5);
  for (const resource of mine ? [mine, ...free] : free) {
    if (await acquireLock(deps, resource, owner, leaseMs)) return resource;
  }
  return undefined;
}

/**
 * Releases every slot of the cluster `owner` holds. Two deliveries of one job's message that take
 * its turn at the same moment (same owner: same attempt) can each take a slot; whichever claims the
 * job runs, and its release gives back both, so a slot never outlives the attempt it was taken for.
 */
export async function releaseSlots(deps: Db, clusterId: string, owner: string): Promise<void> {
  for (const slot of await slotsOf(deps, clusterId)) {
    if (slot.owner === owner) await releaseLock(deps, slot.resource, owner);
  }
}

function slotsOf(deps: Db, clusterId: string): Promise<Lock[]> {
  const { pk, skPrefix } = keys.clusterSlots(clusterId);
  return queryAll(deps, lockItem, {
    KeyConditionExpression: "pk = :pk AND begins_with(sk, :slot)",
    ExpressionAttributeValues: { ":pk": pk, ":slot": skPrefix },
    ConsistentRead: true,
  });
}
