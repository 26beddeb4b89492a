import { BatchGetCommand } from "@aws-sdk/lib-dynamodb";
import type { Deps } from "../deps.ts";
import { mapDbError } from "./store.ts";

type Db = Pick<Deps, "ddb" | "table">;
type Key = { pk: string; sk: string };

/** BatchGetItem's ceiling of keys per request. */
const MAX_KEYS = 100;

export const keyOf = (k: Key) => `${k.pk}\u0000${k.sk}`;

/**
 * Reads many items by key, 100 keys a request, following UnprocessedKeys until none is left.
 * Returns the raw items found, by `keyOf(key)`; absent keys are absent from the map. Eventually
 * consistent unless told otherwise: callers use it for cheap pre-checks that a conditional write
 * confirms.
 */
export async function batchGetItems(db: Db, itemKeys: readonly Key[], consistent = false): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  const unique = [...new Map(itemKeys.map((k) => [keyOf(k), { pk: k.pk, sk: k.sk }])).values()];
  for (let i = 0; i < unique.length; i += MAX_KEYS) {
    let pending: Key[] = unique.slice(i, i + MAX_KEYS);
    for (let round = 0; pending.length; round++) {
      if (round > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** round)));
      try {
        const res = await db.ddb.send(new BatchGetCommand({ RequestItems: { [db.table]: { Keys: pending, ConsistentRead: consistent } } }));
        for (const item of res.Responses?.[db.table] ?? []) out.set(keyOf(item as Key), item);
        pending = (res.UnprocessedKeys?.[db.table]?.Keys ?? []) as Key[];
      } catch (err) {
        return mapDbError(err);
      }
    }
  }
  return out;
}
