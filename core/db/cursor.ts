import { AppError } from "../errors.ts";

/**
 * Paging cursors: the LastEvaluatedKey of a Query, as base64url JSON. A cursor is only ever read
 * back as the ExclusiveStartKey of the same list, and `queryPage` checks that it is one (the key
 * attributes of that index, the list's own partition, the list's sort-key prefix), so a cursor
 * the server did not issue for this list is a 400, never a DynamoDB error.
 */
export function encodeCursor(key: Record<string, unknown> | undefined): string | undefined {
  return key ? Buffer.from(JSON.stringify(key)).toString("base64url") : undefined;
}

const MAX_CURSOR_CHARS = 4096;
export const invalidCursor = () => new AppError("bad_request", "cursor is not valid for this list (pass the x-next-cursor of its previous page)");

/** Decodes a cursor to a key of string attributes; a 400 for anything else. */
export function decodeCursor(cursor: string | undefined): Record<string, string> | undefined {
  if (cursor === undefined || cursor === "") return undefined;
  if (cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalidCursor();
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalidCursor();
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw invalidCursor();
  const entries = Object.entries(v);
  if (entries.length === 0 || entries.some(([, x]) => typeof x !== "string" || x.length === 0 || x.length > 1024)) throw invalidCursor();
  return Object.fromEntries(entries) as Record<string, string>;
}

/** The key attributes a start key must carry for a query on `index` (the table's, plus the index's). */
export function startKeyAttributes(index: string | undefined): { partition: string; sort: string; all: string[] } {
  if (!index) return { partition: "pk", sort: "sk", all: ["pk", "sk"] };
  const m = /^gsi(\d+)$/.exec(index);
  if (!m) throw new Error(`unknown index ${index}`);
  const partition = `${index}pk`;
  const sort = `${index}sk`;
  return { partition, sort, all: ["pk", "sk", partition, sort] };
}

/**
 * Checks that `key` could have been the LastEvaluatedKey of this query: exactly the index's key
 * attributes, the query's partition value, and (for a `begins_with` sort condition) its prefix.
 */
export function checkStartKey(
  input: {
    IndexName?: string;
    KeyConditionExpression?: string;
    ExpressionAttributeNames?: Record<string, string>;
    ExpressionAttributeValues?: Record<string, unknown>;
  },
  key: Record<string, unknown>,
): void {
  const attrs = startKeyAttributes(input.IndexName);
  const names = Object.keys(key);
  if (names.length !== attrs.all.length || !attrs.all.every((a) => typeof key[a] === "string" && (key[a] as string).length > 0)) throw invalidCursor();
  const expr = input.KeyConditionExpression ?? "";
  const resolve = (n: string) => (n.startsWith("#") ? input.ExpressionAttributeNames?.[n] : n);
  const values = input.ExpressionAttributeValues ?? {};
  let partitionChecked = false;
  for (const m of expr.matchAll(/([#\w]+)\s*=\s*(:\w+)/g)) {
    if (resolve(m[1]!) === attrs.partition) {
      if (key[attrs.partition] !== values[m[2]!]) throw invalidCursor();
      partitionChecked = true;
    }
  }
  if (!partitionChecked) throw new Error("queryPage needs `<partition> = :value` in KeyConditionExpression to check cursors");
  for (const m of expr.matchAll(/begins_with\(\s*([#\w]+)\s*,\s*(:\w+)\s*\)/g)) {
    const prefix = values[m[2]!];
    if (resolve(m[1]!) === attrs.sort && typeof prefix === "string" && !(key[attrs.sort] as string).startsWith(prefix)) throw invalidCursor();
  }
}
