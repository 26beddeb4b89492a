import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

export interface DdbOpCount {
  calls: number;
  /** Items returned (Item, Items, BatchGet Responses). */
  items: number;
  /** Items DynamoDB evaluated (ScannedCount, or returned items where it reports none): what a read costs. */
  scanned: number;
}

export interface DdbCounter {
  reset(): void;
  snapshot(): { calls: number; items: number; scanned: number; byOp: Record<string, DdbOpCount> };
}

/**
 * Counts every DynamoDB call sent through `ddb` (the Deps' document client) and the items each one
 * read, with a middleware on the client's own stack: the code under test is not touched.
 */
export function countDdb(ddb: DynamoDBDocumentClient): DdbCounter {
  let byOp: Record<string, DdbOpCount> = {};
  ddb.middlewareStack.add(
    (next, context) => async (args) => {
      const op = String(context.commandName ?? "unknown").replace(/Command$/, "");
      const res = await next(args);
      const out = res.output as {
        Item?: unknown;
        Items?: unknown[];
        ScannedCount?: number;
        Responses?: Record<string, unknown[]> | unknown[];
      };
      let items = 0;
      if (out.Item) items = 1;
      if (Array.isArray(out.Items)) items = out.Items.length;
      if (out.Responses && !Array.isArray(out.Responses)) items = Object.values(out.Responses).reduce((n, r) => n + (r?.length ?? 0), 0);
      const c = (byOp[op] ??= { calls: 0, items: 0, scanned: 0 });
      c.calls++;
      c.items += items;
      c.scanned += typeof out.ScannedCount === "number" ? out.ScannedCount : items;
      return res;
    },
    { step: "initialize", name: "benchDdbCounter", priority: "high" },
  );
  return {
    reset: () => {
      byOp = {};
    },
    snapshot: () => {
      const all = Object.values(byOp);
      return {
        calls: all.reduce((n, c) => n + c.calls, 0),
        items: all.reduce((n, c) => n + c.items, 0),
        scanned: all.reduce((n, c) => n + c.scanned, 0),
        byOp: structuredClone(byOp),
      };
    },
  };
}
