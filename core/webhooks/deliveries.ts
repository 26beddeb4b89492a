import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { z } from "../zod.ts";
import { webhookDeliverySchema } from "../contract/webhook-deliveries.ts";
import { errorText, mapSettled } from "../concurrency.ts";
import { keys } from "../db/keys.ts";
import { decodeCursor, getItem, putItem, queryAll, queryPage, updateItemIf, type Page } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { testEventType, type WebhookEvent } from "../events/outbox.ts";
import { newId } from "../ids.ts";
import type { EndpointItem } from "./endpoints.ts";

export const MAX_DELIVERY_ATTEMPTS = 8;

export type WebhookDelivery = z.infer<typeof webhookDeliverySchema>;

export const deliveryItem = webhookDeliverySchema
  .omit({ payload: true })
  .extend({
    item_type: z.literal("webhook_delivery"),
    /** Absent on deliveries stored before the field existed: they read their last change from the other timestamps. */
    updated_at: z.string().optional(),
    event_id: z.string(),
    /** The exact request body (the event), signed byte for byte. */
    body: z.string(),
    /** The receiver's last answer, its first 1 KiB, redacted. */
    response_body: z.string().nullable(),
  })
  .transform((d) => ({ ...d, updated_at: d.updated_at ?? d.delivered_at ?? d.created_at }));
export type DeliveryItem = z.infer<typeof deliveryItem>;

export function toDelivery(item: DeliveryItem): WebhookDelivery {
  return webhookDeliverySchema.parse({ ...item, payload: JSON.parse(item.body) as unknown });
}

/** The due-index entry of a pending delivery (the sweep finds lost messages through it). */
export const dueIndex = (at: string, id: string) => ({ gsi2pk: keys.dueDeliveriesIndex, gsi2sk: `${at}#${id}` });

/** The stored item (keys included) of a new pending delivery of `event` to `endpoint`, due now. */
export function newDeliveryItem(
  endpoint: Pick<EndpointItem, "id" | "organization_id">,
  event: { id: string; type: string; body: string },
  now: Date,
): DeliveryItem & Record<string, unknown> {
  const id = newId("webhookDelivery", now);
  const at = iso(now);
  return {
    ...keys.webhookDelivery(endpoint.id, id),
    ...dueIndex(at, id),
    item_type: "webhook_delivery",
    id,
    organization_id: endpoint.organization_id,
    endpoint_id: endpoint.id,
    event_id: event.id,
    event_type: event.type,
    body: event.body,
    state: "pending",
    attempts: 0,
    max_attempts: MAX_DELIVERY_ATTEMPTS,
    next_attempt_at: at,
    response_status: null,
    response_body: null,
    last_error: null,
    created_at: at,
    delivered_at: null,
    updated_at: at,
  };
}

export async function getDelivery(deps: Pick<Deps, "ddb" | "table">, endpointId: string, id: string): Promise<DeliveryItem | undefined> {
  if (!/^whd_[0-9a-z]{26}$/.test(id)) return undefined;
  return getItem(deps, deliveryItem, keys.webhookDelivery(endpointId, id));
}

/** Newest first. */
export async function listDeliveries(deps: Pick<Deps, "ddb" | "table">, endpointId: string, limit: number, cursor?: string): Promise<Page<DeliveryItem>> {
  return queryPage(deps, deliveryItem, {
    KeyConditionExpression: "pk = :p AND begins_with(sk, :d)",
    ExpressionAttributeValues: { ":p": `WHE#${endpointId}`, ":d": keys.webhookDeliveryPrefix },
    ScanIndexForward: false,
    Limit: limit,
    ExclusiveStartKey: decodeCursor(cursor),
  });
}

// ---------------------------------------------------------------------------------------------
// The deliveries queue: a message names a delivery; the delivery item is the source of truth.

export const deliveryMessageSchema = z
  .object({
    organization_id: z.string().regex(/^org_[0-9a-z]{26}$/),
    endpoint_id: z.string().regex(/^whe_[0-9a-z]{26}$/),
    delivery_id: z.string().regex(/^whd_[0-9a-z]{26}$/),
  })
  .strict();
export type DeliveryMessage = z.infer<typeof deliveryMessageSchema>;

export const messageOf = (d: Pick<DeliveryItem, "organization_id" | "endpoint_id" | "id">): DeliveryMessage => ({
  organization_id: d.organization_id,
  endpoint_id: d.endpoint_id,
  delivery_id: d.id,
});

/**
 * Sends one message per delivery (batches of ten, at most SQS's 900 s delay). Throws when a
 * message could not be sent: the delivery stays pending and due, and the sweep sends it later.
 */
export async function enqueueDeliveries(
  deps: Pick<Deps, "sqs" | "deliveryQueueUrl" | "log">,
  messages: readonly DeliveryMessage[],
  delaySeconds = 0,
): Promise<void> {
  if (!messages.length) return;
  if (!deps.deliveryQueueUrl) {
    deps.log.warn("no webhook deliveries queue is configured (CAPYDB_DELIVERY_QUEUE_URL): deliveries wait", { deliveries: messages.length });
    return;
  }
  const delay = Math.max(0, Math.min(900, Math.round(delaySeconds)));
  for (let i = 0; i < messages.length; i += 10) {
    const chunk = messages.slice(i, i + 10);
    const res = await deps.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: deps.deliveryQueueUrl,
        Entries: chunk.map((m, n) => ({ Id: String(n), MessageBody: JSON.stringify(m), DelaySeconds: delay })),
      }),
    );
    if (res.Failed?.length) throw new Error(`could not enqueue ${res.Failed.length} delivery message(s): ${res.Failed[0]?.Code ?? "unknown"}`);
  }
}

/**
 * A new delivery of an existing body (a test event, or a redelivery) to one endpoint: stored
 * pending, then sent. If the send fails the delivery is still pending and due: the sweep sends it.
 */
export async function createDelivery(
  deps: Pick<Deps, "ddb" | "table" | "now" | "sqs" | "deliveryQueueUrl" | "log">,
  endpoint: EndpointItem,
  event: { id: string; type: string; body: string },
): Promise<DeliveryItem> {
  const item = newDeliveryItem(endpoint, event, deps.now());
  await putItem(deps, item, { condition: "attribute_not_exists(pk)" });
  try {
    await enqueueDeliveries(deps, [messageOf(item)]);
  } catch (err) {
    deps.log.warn("delivery stored but not enqueued; the sweep will send it", { delivery_id: item.id, error: errorText(err) });
  }
  return deliveryItem.parse(item);
}

/** The body of `POST .../test`: a `webhook.test` event naming the endpoint. */
export function testEvent(endpoint: Pick<EndpointItem, "id" | "organization_id">, now: Date): { id: string; type: string; body: string } {
  const id = newId("event", now);
  const body: WebhookEvent = {
    id,
    type: testEventType,
    created_at: iso(now),
    data: {
      organization_id: endpoint.organization_id,
      endpoint_id: endpoint.id,
      message: "A test delivery from CapyDB: your endpoint receives and verifies webhooks.",
    },
  };
  return { id, type: testEventType, body: JSON.stringify(body) };
}

export interface SweepOptions {
  /** A delivery due longer ago than this and still pending has lost its message (or waited past SQS's 15-minute delay). */
  graceMs: number;
  limit: number;
  concurrency: number;
}
export const defaultSweepOptions: SweepOptions = { graceMs: 60_000, limit: 500, concurrency: 8 };

/**
 * Sends again every pending delivery due more than `graceMs` ago: a message lost (an enqueue that
 * failed after the commit, a delivery function that died mid-attempt, whose claim lapsed) or a
 * retry scheduled beyond SQS's 15-minute delay. Its due time moves to now first (conditionally),
 * so one sweep sends it once; the delivery's own claim makes a duplicate message harmless.
 */
export async function sweepDueDeliveries(
  deps: Pick<Deps, "ddb" | "table" | "now" | "sqs" | "deliveryQueueUrl" | "log">,
  opts: SweepOptions = defaultSweepOptions,
): Promise<{ sent: number; errors: number }> {
  const now = deps.now();
  const at = iso(now);
  const due = await queryAll(
    deps,
    deliveryItem,
    {
      IndexName: "gsi2",
      KeyConditionExpression: "gsi2pk = :p AND gsi2sk < :before",
      ExpressionAttributeValues: { ":p": keys.dueDeliveriesIndex, ":before": `${iso(new Date(now.getTime() - opts.graceMs))}#` },
      Limit: opts.limit,
    },
    opts.limit,
  );
  let errors = 0;
  const bumped = await mapSettled(due, opts.concurrency, async (d) => {
    const moved = await updateItemIf(deps, deliveryItem, {
      Key: keys.webhookDelivery(d.endpoint_id, d.id),
      UpdateExpression: "SET next_attempt_at = :at, updated_at = :at, gsi2sk = :sk",
      ConditionExpression: "#state = :pending AND next_attempt_at = :was",
      ExpressionAttributeNames: { "#state": "state" },
      ExpressionAttributeValues: { ":at": at, ":sk": dueIndex(at, d.id).gsi2sk, ":pending": "pending", ":was": d.next_attempt_at },
    });
    return moved !== undefined;
  });
  const toSend: DeliveryMessage[] = [];
  bumped.forEach((r, i) => {
    if (r.status === "rejected") {
      errors++;
      deps.log.error("webhook sweep: could not reschedule a delivery", { delivery_id: due[i]!.id, error: errorText(r.reason) });
    } else if (r.value) toSend.push(messageOf(due[i]!));
  });
  try {
    await enqueueDeliveries(deps, toSend);
  } catch (err) {
    errors++;
    deps.log.error("webhook sweep: could not enqueue", { deliveries: toSend.length, error: errorText(err) });
  }
  return { sent: toSend.length, errors };
}
