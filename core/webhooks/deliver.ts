import { errorText } from "../concurrency.ts";
import { keys } from "../db/keys.ts";
import { updateItemIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { acquireLock, releaseLock } from "../jobs/locks.ts";
import { redact } from "../redact.ts";
import { deliveryItem, dueIndex, enqueueDeliveries, getDelivery, messageOf, type DeliveryItem, type DeliveryMessage } from "./deliveries.ts";
import { DestinationRefused, defaultPolicy, parseWebhookUrl, resolveDestination } from "./destination.ts";
import { getEndpointItem, recordEndpointFailure, recordEndpointSuccess, signingSecrets, type EndpointItem } from "./endpoints.ts";
import { postWebhook } from "./http.ts";
import { signatureHeader } from "../contract/webhook-signature.ts";

/**
 * The delivery's timing and limits. Every number is injectable: tests need seconds where
 * production waits hours.
 */
export interface DeliveryOptions {
  /** A receiver has this long to answer 2xx. */
  timeoutMs: number;
  /** Delay before attempt n+1 after attempt n failed (n = 1..7): about half a day in all. */
  backoffSeconds: readonly number[];
  /** Random spread of each delay: ±this fraction, so failures of many deliveries do not retry in step. */
  jitterFraction: number;
  /** At most this many deliveries to one endpoint at once (one slow receiver cannot hold the queue). */
  concurrencyPerEndpoint: number;
  /** A delivery that finds its endpoint's slots taken comes back after this long. */
  slotBusyDelaySeconds: number;
  /** An endpoint whose deliveries all failed for this long is turned off. */
  disableAfterMs: number;
  maxResponseBytes: number;
  random: () => number;
}

export const defaultDeliveryOptions: DeliveryOptions = {
  timeoutMs: 10_000,
  backoffSeconds: [30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600],
  jitterFraction: 0.2,
  concurrencyPerEndpoint: 4,
  slotBusyDelaySeconds: 5,
  disableAfterMs: 3 * 24 * 3600 * 1000,
  maxResponseBytes: 1024,
  random: Math.random,
};

export interface DeliveryOutcome {
  status: "delivered" | "retrying" | "failed" | "busy" | "ignored";
  reason?: string;
}

export const USER_AGENT = "capydb-webhooks/1.0";

/** An attempt's claim on the delivery lasts the timeout plus this margin; a dead attempt's claim lapses and the sweep sends it again. */
const CLAIM_MARGIN_MS = 20_000;
/** A message arriving this much before the delivery is due is a stale duplicate (the due one is queued, or the sweep sends it). */
const EARLY_SLACK_MS = 5_000;

const ignored = (reason: string): DeliveryOutcome => ({ status: "ignored", reason });

export function retryDelaySeconds(o: Pick<DeliveryOptions, "backoffSeconds" | "jitterFraction" | "random">, attempt: number): number {
  const base = o.backoffSeconds[Math.min(attempt, o.backoffSeconds.length) - 1] ?? 0;
  return Math.max(0, Math.round(base * (1 - o.jitterFraction + 2 * o.jitterFraction * o.random())));
}

/**
 * One queue message: one attempt of one delivery. The delivery item is the source of truth and
 * every step is conditional on it, so duplicate and late messages are harmless: a delivery that is
 * settled, not due, or claimed by a live attempt is left alone. Delivery is at least once: a
 * process that dies after the receiver answered but before the outcome is recorded sends it again
 * (same `X-CapyDB-Delivery`, which receivers dedupe on).
 */
export async function deliverMessage(deps: Deps, msg: DeliveryMessage, overrides: Partial<DeliveryOptions> = {}): Promise<DeliveryOutcome> {
  const o = { ...defaultDeliveryOptions, ...overrides };
  const delivery = await getDelivery(deps, msg.endpoint_id, msg.delivery_id);
  if (!delivery || delivery.organization_id !== msg.organization_id) return ignored("no such delivery");
  if (delivery.state !== "pending") return ignored(`already ${delivery.state}`);
  const now = deps.now();
  if (delivery.next_attempt_at && Date.parse(delivery.next_attempt_at) - now.getTime() > EARLY_SLACK_MS) return ignored("not due yet");

  const endpoint = await getEndpointItem(deps, msg.organization_id, msg.endpoint_id);
  if (!endpoint?.is_active) {
    const why = !endpoint ? "the endpoint was deleted" : "the endpoint is disabled";
    const claimed = await claim(deps, delivery, o);
    if (claimed) await settle(deps, claimed, { state: "failed", status: null, body: null, error: why }, o);
    return { status: "failed", reason: why };
  }

  const slot = await takeSlot(deps, delivery, o);
  if (slot === undefined) {
    await enqueueDeliveries(deps, [msg], o.slotBusyDelaySeconds * (0.5 + o.random()));
    return { status: "busy", reason: "the endpoint's delivery slots are all taken" };
  }
  try {
    const claimed = await claim(deps, delivery, o);
    if (!claimed) return ignored("claimed by another attempt");
    return await attempt(deps, endpoint, claimed, o);
  } finally {
    await releaseLock(deps, slot.resource, slot.owner).catch((err: unknown) =>
      deps.log.warn("could not release a webhook slot; its lease will lapse", { endpoint_id: endpoint.id, error: errorText(err) }),
    );
  }
}

/** One of the endpoint's `concurrencyPerEndpoint` slots (leased locks), or undefined when all are taken. */
async function takeSlot(deps: Deps, delivery: DeliveryItem, o: DeliveryOptions): Promise<{ resource: string; owner: string } | undefined> {
  const owner = `${delivery.id}#${delivery.attempts + 1}`;
  const start = Math.floor(o.random() * o.concurrencyPerEndpoint);
  for (let i = 0; i < o.concurrencyPerEndpoint; i++) {
    const resource = `webhook:${delivery.endpoint_id}:${(start + i) % o.concurrencyPerEndpoint}`;
    if (await acquireLock(deps, resource, owner, o.timeoutMs + CLAIM_MARGIN_MS)) return { resource, owner };
  }
  return undefined;
}

/** pending (not claimed by a live attempt) -> attempt n+1, claimed until the timeout lapses. */
async function claim(deps: Deps, d: DeliveryItem, o: DeliveryOptions): Promise<DeliveryItem | undefined> {
  const now = deps.now();
  const until = iso(new Date(now.getTime() + o.timeoutMs + CLAIM_MARGIN_MS));
  return updateItemIf(deps, deliveryItem, {
    Key: keys.webhookDelivery(d.endpoint_id, d.id),
    UpdateExpression: "SET attempts = :next, next_attempt_at = :until, updated_at = :now, gsi2sk = :sk",
    ConditionExpression: "#state = :pending AND attempts = :n AND attempts < max_attempts",
    ExpressionAttributeNames: { "#state": "state" },
    ExpressionAttributeValues: {
      ":next": d.attempts + 1,
      ":until": until,
      ":now": iso(now),
      ":sk": dueIndex(until, d.id).gsi2sk,
      ":pending": "pending",
      ":n": d.attempts,
    },
  });
}

async function attempt(deps: Deps, endpoint: EndpointItem, d: DeliveryItem, o: DeliveryOptions): Promise<DeliveryOutcome> {
  const now = deps.now();
  const secrets = signingSecrets(deps, endpoint, now);
  let result: { ok: boolean; status: number | null; body: string | null; error: string | null };
  try {
    const url = parseWebhookUrl(endpoint.url, deps.webhookPolicy);
    const dest = await resolveDestination(url, deps.webhookPolicy);
    const t = Math.floor(now.getTime() / 1000);
    const res = await postWebhook({
      url,
      address: dest.address,
      family: dest.family,
      policy: deps.webhookPolicy ?? defaultPolicy,
      body: d.body,
      timeoutMs: o.timeoutMs,
      maxResponseBytes: o.maxResponseBytes,
      headers: {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "x-capydb-event": d.event_type,
        "x-capydb-delivery": d.id,
        "x-capydb-signature": signatureHeader(secrets, t, d.body),
      },
    });
    result = { ok: res.ok, status: res.status, body: redact(res.body, secrets), error: res.error ? redact(res.error, secrets) : null };
  } catch (err) {
    if (!(err instanceof DestinationRefused)) throw err;
    result = { ok: false, status: null, body: null, error: `refused: ${err.message}` };
  }

  if (result.ok) {
    await settle(deps, d, { state: "delivered", status: result.status, body: result.body, error: null }, o);
    await recordEndpointSuccess(deps, endpoint);
    deps.log.info("webhook delivered", { delivery_id: d.id, endpoint_id: endpoint.id, event_type: d.event_type, attempt: d.attempts, status: result.status });
    return { status: "delivered" };
  }
  const detail = result.body ? `${result.error}: ${result.body}` : (result.error ?? "failed");
  await recordEndpointFailure(deps, endpoint, o.disableAfterMs);
  if (d.attempts >= d.max_attempts) {
    await settle(deps, d, { state: "failed", status: result.status, body: result.body, error: detail }, o);
    deps.log.warn("webhook delivery failed for good", { delivery_id: d.id, endpoint_id: endpoint.id, attempts: d.attempts, error: result.error });
    return { status: "failed", reason: detail };
  }
  const delay = retryDelaySeconds(o, d.attempts);
  const retried = await settle(deps, d, { state: "pending", status: result.status, body: result.body, error: detail, retryInSeconds: delay }, o);
  deps.log.info("webhook attempt failed; will retry", {
    delivery_id: d.id,
    endpoint_id: endpoint.id,
    attempt: d.attempts,
    retry_in_seconds: delay,
    error: result.error,
  });
  // Within SQS's 15-minute delay the next attempt is a delayed message; beyond it, the sweep sends it when due.
  if (retried && delay <= 900) {
    await enqueueDeliveries(deps, [messageOf(d)], delay).catch((err: unknown) =>
      deps.log.warn("could not enqueue the retry; the sweep will send it", { delivery_id: d.id, error: errorText(err) }),
    );
  }
  return { status: "retrying", reason: detail };
}

/** Records an attempt's outcome, conditional on the attempt's claim (state pending, same attempt count). */
async function settle(
  deps: Deps,
  d: DeliveryItem,
  r: { state: "delivered" | "failed" | "pending"; status: number | null; body: string | null; error: string | null; retryInSeconds?: number },
  _o: DeliveryOptions,
): Promise<boolean> {
  const now = deps.now();
  const at = iso(now);
  const next = r.state === "pending" ? iso(new Date(now.getTime() + (r.retryInSeconds ?? 0) * 1000)) : null;
  const index = next ? `SET gsi2pk = :gpk, gsi2sk = :gsk` : "REMOVE gsi2pk, gsi2sk";
  const values: Record<string, unknown> = {
    ":state": r.state,
    ":status": r.status,
    ":body": r.body,
    ":error": r.error ? r.error.slice(0, 2048) : null,
    ":next": next,
    ":delivered": r.state === "delivered" ? at : null,
    ":updated": at,
    ":pending": "pending",
    ":n": d.attempts,
  };
  if (next) Object.assign(values, { ":gpk": dueIndex(next, d.id).gsi2pk, ":gsk": dueIndex(next, d.id).gsi2sk });
  const sets =
    "#state = :state, response_status = :status, response_body = :body, last_error = :error, next_attempt_at = :next, delivered_at = :delivered, updated_at = :updated";
  const settled = await updateItemIf(deps, deliveryItem, {
    Key: keys.webhookDelivery(d.endpoint_id, d.id),
    UpdateExpression: next ? `SET ${sets}, gsi2pk = :gpk, gsi2sk = :gsk` : `SET ${sets} ${index}`,
    ConditionExpression: "#state = :pending AND attempts = :n",
    ExpressionAttributeNames: { "#state": "state" },
    ExpressionAttributeValues: values,
  });
  return settled !== undefined;
}
