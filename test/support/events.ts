import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import type { Deps } from "../../core/deps.ts";
import { eventItem, webhookEventSchema, type EventItem, type WebhookEvent } from "../../core/events/outbox.ts";

/**
 * Every outbox event in the file's table (a Scan: tests only, on small tables), with its body
 * parsed, optionally only those of one type whose `data[field]` is `value`.
 */
export async function storedEvents(
  deps: Pick<Deps, "ddb" | "table">,
  filter: { type?: string; field?: string; value?: unknown } = {},
): Promise<(EventItem & { event: WebhookEvent })[]> {
  const out: (EventItem & { event: WebhookEvent })[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const res = await deps.ddb.send(
      new ScanCommand({
        TableName: deps.table,
        FilterExpression: "item_type = :e",
        ExpressionAttributeValues: { ":e": "event" },
        ExclusiveStartKey: start,
        ConsistentRead: true,
      }),
    );
    for (const raw of res.Items ?? []) {
      const item = eventItem.parse(raw);
      out.push({ ...item, event: webhookEventSchema.parse(JSON.parse(item.body)) });
    }
    start = res.LastEvaluatedKey;
  } while (start);
  return out
    .filter((e) => (filter.type === undefined || e.type === filter.type) && (filter.field === undefined || e.event.data[filter.field] === filter.value))
    .sort((a, b) => a.id.localeCompare(b.id));
}
