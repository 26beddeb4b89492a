import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { randomUUID } from "node:crypto";
import type { z } from "zod";
import type { Deps } from "../deps.ts";
import { AppError, isUnavailable } from "../errors.ts";
import { checkStartKey, decodeCursor, encodeCursor } from "./cursor.ts";

type Db = Pick<Deps, "ddb" | "table">;

// ---------------------------------------------------------------------------------------------
// What a failed write means. DynamoDB reports a refused write in three shapes: a plain
// ConditionalCheckFailedException, a TransactionCanceledException whose CancellationReasons say
// per item why (ConditionalCheckFailed, TransactionConflict, ThrottlingError, ...), and, for a
// plain write that touched an item inside another request's transaction, a
// TransactionConflictException. This is the one place that reads them.

/**
 * - `condition`: the item is not in the state the write required (someone else got there first);
 * - `contention`: another transaction was writing the same item at that moment (retry);
 * - `unavailable`: throttled or unreachable (retry later: a 503);
 * - undefined: anything else (a bug: a 500).
 */
export type WriteFailure = "condition" | "contention" | "unavailable";

const contentionNames = new Set(["TransactionConflictException", "TransactionInProgressException"]);
const throttledReasons = new Set(["ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"]);

export function writeFailureOf(err: unknown): WriteFailure | undefined {
  if (err instanceof AppError)
    return err.code === "conflict" ? (err.contention ? "contention" : "condition") : err.code === "unavailable" ? "unavailable" : undefined;
  const e = err as { name?: string; CancellationReasons?: { Code?: string }[] } | undefined;
  if (e?.name === "ConditionalCheckFailedException") return "condition";
  if (e?.name && contentionNames.has(e.name)) return "contention";
  if (e?.name === "TransactionCanceledException") {
    const codes = (e.CancellationReasons ?? []).map((r) => r.Code ?? "None");
    // A failed condition decides: retrying cannot make it hold.
    if (codes.includes("ConditionalCheckFailed")) return "condition";
    if (codes.includes("TransactionConflict")) return "contention";
    if (codes.some((c) => throttledReasons.has(c))) return "unavailable";
    return undefined;
  }
  return isUnavailable(err) ? "unavailable" : undefined;
}

/** True when the write was refused because its condition did not hold (plain or in a transaction). */
export const isConditionFailed = (err: unknown): boolean => writeFailureOf(err) === "condition";

/** Maps SDK failures to domain errors: a failed condition or contention is a conflict, an outage a 503. */
export function mapDbError(err: unknown, conflictMessage = "the item changed concurrently"): never {
  if (err instanceof AppError) throw err;
  const failure = writeFailureOf(err);
  if (failure === "condition") throw new AppError("conflict", conflictMessage, { cause: err });
  if (failure === "contention") {
    throw new AppError("conflict", "a concurrent request is changing the same data; retry the request", { cause: err, contention: true, retryAfterSeconds: 1 });
  }
  if (failure === "unavailable") throw new AppError("unavailable", "the database is unavailable, try again shortly", { cause: err });
  throw err;
}

/** Delays between tries of a write that met contention (jittered): four tries in all. */
const contentionBackoffMs = [20, 60, 180];

const conditionFailed: unique symbol = Symbol("condition failed");

/**
 * The one conditional-write helper: runs `write`, retrying it while it meets contention (another
 * transaction on the same items: DynamoDB says retry), and answers `conditionFailed` when its
 * condition did not hold. Throttling and outages become a 503 AppError, persistent contention a
 * retryable 409; nothing here is ever a 500.
 */
async function runWrite<T>(write: () => Promise<T>): Promise<T | typeof conditionFailed> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      const failure = writeFailureOf(err);
      if (failure === "condition") return conditionFailed;
      if (failure === "contention" && attempt < contentionBackoffMs.length) {
        const base = contentionBackoffMs[attempt]!;
        await new Promise((r) => setTimeout(r, base / 2 + Math.random() * base));
        continue;
      }
      return mapDbError(err);
    }
  }
}

/** GetItem, parsed with the item's schema; undefined when absent. Strongly consistent by default. */
export async function getItem<S extends z.ZodType>(db: Db, schema: S, key: { pk: string; sk: string }, consistent = true): Promise<z.infer<S> | undefined> {
  try {
    const res = await db.ddb.send(new GetCommand({ TableName: db.table, Key: key, ConsistentRead: consistent }));
    return res.Item ? (schema.parse(res.Item) as z.infer<S>) : undefined;
  } catch (err) {
    return mapDbError(err);
  }
}

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page; undefined at the end. */
  cursor?: string;
}

export { decodeCursor, encodeCursor } from "./cursor.ts";

/**
 * One Query page, items parsed with the schema. `cursor` (a previous page's) is checked to belong
 * to this very list (400 otherwise); an `ExclusiveStartKey` passed in `input` is checked the same way.
 */
export async function queryPage<S extends z.ZodType>(
  db: Db,
  schema: S,
  input: Omit<QueryCommandInput, "TableName">,
  cursor?: string,
): Promise<Page<z.infer<S>>> {
  const start = (cursor !== undefined ? decodeCursor(cursor) : undefined) ?? input.ExclusiveStartKey;
  if (start) checkStartKey(input, start);
  try {
    const res = await db.ddb.send(new QueryCommand({ TableName: db.table, ...input, ExclusiveStartKey: start }));
    return {
      items: (res.Items ?? []).map((i) => schema.parse(i) as z.infer<S>),
      cursor: encodeCursor(res.LastEvaluatedKey),
    };
  } catch (err) {
    return mapDbError(err);
  }
}

/** Query until `limit` items matched (filters can make a page short) or the end. */
export async function queryAll<S extends z.ZodType>(
  db: Db,
  schema: S,
  input: Omit<QueryCommandInput, "TableName" | "ExclusiveStartKey">,
  limit = Infinity,
): Promise<z.infer<S>[]> {
  const out: z.infer<S>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    try {
      const res = await db.ddb.send(new QueryCommand({ TableName: db.table, ...input, ExclusiveStartKey: start }));
      for (const i of res.Items ?? []) {
        out.push(schema.parse(i) as z.infer<S>);
        if (out.length >= limit) return out;
      }
      start = res.LastEvaluatedKey;
    } catch (err) {
      return mapDbError(err);
    }
  } while (start);
  return out;
}

export interface Condition {
  condition?: string;
  names?: Record<string, string>;
  values?: Record<string, unknown>;
}

/** PutItem under an optional condition; false when the condition did not hold. */
export async function putItemIf(db: Db, item: Record<string, unknown>, opts: Condition = {}): Promise<boolean> {
  const res = await runWrite(() =>
    db.ddb.send(
      new PutCommand({
        TableName: db.table,
        Item: item,
        ConditionExpression: opts.condition,
        ExpressionAttributeNames: opts.names,
        ExpressionAttributeValues: opts.values,
      }),
    ),
  );
  return res !== conditionFailed;
}

/** PutItem; a failed condition is a conflict AppError (409) with `conflictMessage`. */
export async function putItem(db: Db, item: Record<string, unknown>, opts: Condition & { conflictMessage?: string } = {}): Promise<void> {
  if (!(await putItemIf(db, item, opts))) throw new AppError("conflict", opts.conflictMessage ?? "the item changed concurrently");
}

/** UpdateItem returning the new item, parsed; undefined when the condition did not hold. */
export async function updateItemIf<S extends z.ZodType>(
  db: Db,
  schema: S,
  input: Omit<UpdateCommandInput, "TableName" | "ReturnValues">,
): Promise<z.infer<S> | undefined> {
  const res = await runWrite(() => db.ddb.send(new UpdateCommand({ TableName: db.table, ...input, ReturnValues: "ALL_NEW" })));
  return res === conditionFailed ? undefined : (schema.parse(res.Attributes) as z.infer<S>);
}

/** UpdateItem returning the new item, parsed. A failed condition is a conflict AppError. */
export async function updateItem<S extends z.ZodType>(
  db: Db,
  schema: S,
  input: Omit<UpdateCommandInput, "TableName" | "ReturnValues">,
  conflictMessage?: string,
): Promise<z.infer<S>> {
  const item = await updateItemIf(db, schema, input);
  if (item === undefined) throw new AppError("conflict", conflictMessage ?? "the item changed concurrently");
  return item;
}

/** DeleteItem under a condition; false when the condition did not hold. */
export async function deleteItemIf(db: Db, key: { pk: string; sk: string }, opts: Condition = {}): Promise<boolean> {
  const res = await runWrite(() =>
    db.ddb.send(
      new DeleteCommand({
        TableName: db.table,
        Key: key,
        ConditionExpression: opts.condition,
        ExpressionAttributeNames: opts.names,
        ExpressionAttributeValues: opts.values,
      }),
    ),
  );
  return res !== conditionFailed;
}

type TransactItems = NonNullable<TransactWriteCommandInput["TransactItems"]>;

/** The items with the table's name filled in. */
function inTable(db: Db, items: TransactItems): TransactItems {
  return items.map((i) => {
    const op = i.Put ?? i.Update ?? i.Delete ?? i.ConditionCheck;
    if (op) (op as { TableName?: string }).TableName = db.table;
    return i;
  });
}

/**
 * Pauses before sending a transaction again with the same token after its answer was lost (the
 * SDK's own tries, which reuse the token too, have all timed out): two more sends in all.
 */
export const unknownOutcomeBackoffMs = [250, 1000];

/**
 * TransactWriteItems (table names filled in); false when any item's condition did not hold.
 *
 * A transaction whose answer never came (a timeout, a reset connection) may have committed: the
 * write can land after the client gave up. Answering "unavailable, try again" then invites a
 * second copy of whatever it created (a second backup for a client that retries as told). So every
 * transaction carries a ClientRequestToken, and an unanswered one is sent again with the same
 * token: DynamoDB commits it at most once and, for 10 minutes, answers a repeat with the earlier
 * outcome (success without writing again). Only when every send went unanswered does the caller
 * get the 503, and then whether it committed is unknown (an Idempotency-Key makes the client's
 * retry safe in that case too).
 */
export async function transactWriteIf(db: Db, items: TransactItems): Promise<boolean> {
  const withTable = inTable(db, items);
  // One token for every send of this transaction, the contention retries' too: a cancelled
  // transaction is executed afresh when sent again with its token; only a committed one is not.
  const input = { TransactItems: withTable, ClientRequestToken: randomUUID() };
  for (let resend = 0; ; resend++) {
    try {
      const res = await runWrite(() => db.ddb.send(new TransactWriteCommand(input)));
      return res !== conditionFailed;
    } catch (err) {
      const unanswered = err instanceof AppError && err.code === "unavailable" && isUnavailable(err.cause) && !isThrottled(err.cause);
      if (!unanswered || resend >= unknownOutcomeBackoffMs.length) throw err;
      await new Promise((r) => setTimeout(r, unknownOutcomeBackoffMs[resend]));
    }
  }
}

/** A refusal DynamoDB did answer (throttled: nothing was written), as opposed to no answer at all. */
function isThrottled(err: unknown): boolean {
  const e = err as { name?: string; CancellationReasons?: { Code?: string }[] } | undefined;
  if (e?.name === "TransactionCanceledException") return true;
  return e?.name !== undefined && ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"].includes(e.name);
}

/**
 * One TransactWriteItems, not retried, for a caller that batches independent groups of items and
 * must know whose condition failed: resolves to the indexes of the items whose condition did not
 * hold (empty: the transaction committed). Rejects with DynamoDB's error when it was cancelled for
 * any other reason (contention, throttling, a refused item) or gave no reason per item; the caller
 * then writes its groups one by one.
 */
export async function transactWriteRefusals(db: Db, items: TransactItems): Promise<number[]> {
  const withTable = inTable(db, items);
  try {
    await db.ddb.send(new TransactWriteCommand({ TransactItems: withTable }));
    return [];
  } catch (err) {
    const e = err as { name?: string; CancellationReasons?: { Code?: string }[] };
    const reasons = e?.name === "TransactionCanceledException" ? (e.CancellationReasons ?? []) : [];
    const refused = reasons.flatMap((r, i) => (r.Code === "ConditionalCheckFailed" ? [i] : []));
    if (reasons.length !== items.length || !refused.length) throw err;
    return refused;
  }
}

/** TransactWriteItems; a failed condition is a conflict AppError (409) with `conflictMessage`. */
export async function transactWrite(db: Db, items: TransactItems, conflictMessage?: string): Promise<void> {
  if (!(await transactWriteIf(db, items))) throw new AppError("conflict", conflictMessage ?? "the item changed concurrently");
}

/**
 * Builds `SET a = :a, b = :b` (and `REMOVE` for undefined values) from a plain object, so update
 * call sites read as the fields they change.
 */
export function setFields(
  fields: Record<string, unknown>,
): Pick<UpdateCommandInput, "UpdateExpression" | "ExpressionAttributeNames" | "ExpressionAttributeValues"> {
  const sets: string[] = [];
  const removes: string[] = [];
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    names[`#${k}`] = k;
    if (v === undefined) removes.push(`#${k}`);
    else {
      sets.push(`#${k} = :${k}`);
      values[`:${k}`] = v;
    }
  }
  const expr = [sets.length ? `SET ${sets.join(", ")}` : "", removes.length ? `REMOVE ${removes.join(", ")}` : ""].filter(Boolean).join(" ");
  return {
    UpdateExpression: expr,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: Object.keys(values).length ? values : undefined,
  };
}
