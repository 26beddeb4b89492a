import {
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from "@aws-sdk/lib-dynamodb";
import type { z } from "zod";
import type { Deps } from "../deps.ts";
import { AppError, isConditionFailed, isUnavailable } from "../errors.ts";

type Db = Pick<Deps, "ddb" | "table">;

/** Maps SDK failures to domain errors: a failed condition is a conflict, an outage a 503. */
export function mapDbError(err: unknown, conflictMessage = "the item changed concurrently"): never {
  if (err instanceof AppError) throw err;
  if (isConditionFailed(err)) throw new AppError("conflict", conflictMessage, { cause: err });
  if (isUnavailable(err)) throw new AppError("unavailable", "the database is unavailable, try again shortly", { cause: err });
  throw err;
}

/** GetItem, parsed with the item's schema; undefined when absent. Strongly consistent by default. */
export async function getItem<S extends z.ZodType>(
  db: Db,
  schema: S,
  key: { pk: string; sk: string },
  consistent = true,
): Promise<z.infer<S> | undefined> {
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

export function encodeCursor(key: Record<string, unknown> | undefined): string | undefined {
  return key ? Buffer.from(JSON.stringify(key)).toString("base64url") : undefined;
}

export function decodeCursor(cursor: string | undefined): Record<string, unknown> | undefined {
  if (!cursor) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new AppError("bad_request", "cursor is not valid");
}

/** One Query page, items parsed with the schema. */
export async function queryPage<S extends z.ZodType>(
  db: Db,
  schema: S,
  input: Omit<QueryCommandInput, "TableName">,
): Promise<Page<z.infer<S>>> {
  try {
    const res = await db.ddb.send(new QueryCommand({ TableName: db.table, ...input }));
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

export async function putItem(
  db: Db,
  item: Record<string, unknown>,
  opts: { condition?: string; names?: Record<string, string>; values?: Record<string, unknown>; conflictMessage?: string } = {},
): Promise<void> {
  try {
    await db.ddb.send(
      new PutCommand({
        TableName: db.table,
        Item: item,
        ConditionExpression: opts.condition,
        ExpressionAttributeNames: opts.names,
        ExpressionAttributeValues: opts.values,
      }),
    );
  } catch (err) {
    mapDbError(err, opts.conflictMessage);
  }
}

/** UpdateItem returning the new item, parsed. A failed condition is a conflict AppError. */
export async function updateItem<S extends z.ZodType>(
  db: Db,
  schema: S,
  input: Omit<UpdateCommandInput, "TableName" | "ReturnValues">,
  conflictMessage?: string,
): Promise<z.infer<S>> {
  try {
    const res = await db.ddb.send(new UpdateCommand({ TableName: db.table, ...input, ReturnValues: "ALL_NEW" }));
    return schema.parse(res.Attributes) as z.infer<S>;
  } catch (err) {
    return mapDbError(err, conflictMessage);
  }
}

export async function transactWrite(
  db: Db,
  items: NonNullable<TransactWriteCommandInput["TransactItems"]>,
  conflictMessage?: string,
): Promise<void> {
  try {
    await db.ddb.send(
      new TransactWriteCommand({
        TransactItems: items.map((i) => {
          const op = i.Put ?? i.Update ?? i.Delete ?? i.ConditionCheck;
          if (op) (op as { TableName?: string }).TableName = db.table;
          return i;
        }),
      }),
    );
  } catch (err) {
    mapDbError(err, conflictMessage);
  }
}

/**
 * Builds `SET a = :a, b = :b` (and `REMOVE` for undefined values) from a plain object, so update
 * call sites read as the fields they change.
 */
export function setFields(fields: Record<string, unknown>): Pick<UpdateCommandInput, "UpdateExpression" | "ExpressionAttributeNames" | "ExpressionAttributeValues"> {
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
  const expr = [sets.length ? `SET ${sets.join(", ")}` : "", removes.length ? `REMOVE ${removes.join(", ")}` : ""]
    .filter(Boolean)
    .join(" ");
  return {
    UpdateExpression: expr,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: Object.keys(values).length ? values : undefined,
  };
}
