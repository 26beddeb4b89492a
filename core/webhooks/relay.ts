import { errorText, mapSettled } from "../concurrency.ts";
import { keys } from "../db/keys.ts";
import { queryAll, transactWriteIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { eventItem, type EventItem } from "../events/outbox.ts";
import { enqueueDeliveries, messageOf, newDeliveryItem, type DeliveryMessage } from "./deliveries.ts";
import { listEndpointItems } from "./endpoints.ts";

export interface RelayOptions {
  /** Events handled per pass, oldest first; the rest wait for the next pass. */
  limit: number;
  concurrency: number;
}
export const defaultRelayOptions: RelayOptions = { limit: 200, concurrency: 8 };

export interface RelayReport {
  events: number;
  deliveries: number;
  errors: number;
}

/**
 * The outbox relay: every event still in the outbox index becomes one pending delivery per active
 * endpoint of its organization subscribed to its type, and leaves the outbox, in one transaction
 * (an event is fanned out exactly once, even when two relays run at once). The deliveries are then
 * sent to the deliveries queue; a send that fails leaves them pending and due, for the sweep.
 *
 * Why a sparse index read on a tick rather than DynamoDB Streams: the outbox stays a plain
 * Query that every environment runs the same way (the local stack, the tests, the dispatcher
 * Lambda), nothing is lost when the relay is down for longer than a stream's 24-hour retention,
 * and it needs no shard bookkeeping. The price is latency: on AWS the dispatcher's minute tick.
 */
export async function relayEvents(deps: Deps, opts: RelayOptions = defaultRelayOptions): Promise<RelayReport> {
  const report: RelayReport = { events: 0, deliveries: 0, errors: 0 };
  const waiting = await queryAll(
    deps,
    eventItem,
    { IndexName: "gsi2", KeyConditionExpression: "gsi2pk = :p", ExpressionAttributeValues: { ":p": keys.outboxIndex }, Limit: opts.limit },
    opts.limit,
  );
  const toSend: DeliveryMessage[] = [];
  const results = await mapSettled(waiting, opts.concurrency, (event) => fanOut(deps, event));
  results.forEach((r, i) => {
    if (r.status === "rejected") {
      report.errors++;
      deps.log.error("webhook relay: could not relay an event", { event_id: waiting[i]!.id, error: errorText(r.reason) });
    } else if (r.value) {
      report.events++;
      report.deliveries += r.value.length;
      toSend.push(...r.value);
    }
  });
  try {
    await enqueueDeliveries(deps, toSend);
  } catch (err) {
    report.errors++;
    deps.log.error("webhook relay: deliveries stored but not enqueued; the sweep will send them", { deliveries: toSend.length, error: errorText(err) });
  }
  return report;
}

/** One event's deliveries and its exit from the outbox, together; undefined when another relay won. */
async function fanOut(deps: Deps, event: EventItem): Promise<DeliveryMessage[] | undefined> {
  const endpoints = (await listEndpointItems(deps, event.organization_id)).filter(
    (e) => e.is_active && (e.event_types.length === 0 || e.event_types.includes(event.type)),
  );
  const now = deps.now();
  const deliveries = endpoints.map((e) => newDeliveryItem(e, event, now));
  const committed = await transactWriteIf(deps, [
    ...deliveries.map((d) => ({ Put: { TableName: deps.table, Item: d, ConditionExpression: "attribute_not_exists(pk)" } })),
    {
      Update: {
        TableName: deps.table,
        Key: keys.event(event.id),
        UpdateExpression: "SET relayed_at = :at, delivery_count = :n REMOVE gsi2pk, gsi2sk",
        ConditionExpression: "attribute_exists(gsi2pk)",
        ExpressionAttributeValues: { ":at": iso(now), ":n": deliveries.length },
      },
    },
  ]);
  if (!committed) return undefined;
  if (deliveries.length)
    deps.log.info("webhook event relayed", {
      event_id: event.id,
      event_type: event.type,
      organization_id: event.organization_id,
      deliveries: deliveries.length,
    });
  return deliveries.map(messageOf);
}
