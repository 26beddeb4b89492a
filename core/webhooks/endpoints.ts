import { z } from "../zod.ts";
import { endpointInput, endpointPatch, webhookEndpointSchema } from "../contract/webhook-endpoints.ts";
import { keys } from "../db/keys.ts";
import { deleteItemIf, getItem, putItem, queryAll, setFields, updateItem, updateItemIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { eventTypeSchema } from "../events/outbox.ts";
import { newId } from "../ids.ts";
import { open, seal } from "../orgs/secretbox.ts";
import { DestinationRefused, checkWebhookUrl } from "./destination.ts";
import { newWebhookSecret } from "../contract/webhook-signature.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

export type WebhookEndpoint = z.infer<typeof webhookEndpointSchema>;

const sealedSecret = z.object({
  sealed: z.string(),
  created_at: z.string(),
  /** Set on the previous secret by a rotation: it keeps signing until then. */
  expires_at: z.string().nullable(),
});

export const endpointItem = webhookEndpointSchema.omit({ health: true }).extend({
  item_type: z.literal("webhook_endpoint"),
  event_types: z.array(eventTypeSchema),
  /** Newest first; sealed with the service key (core/orgs/secretbox.ts), never stored in plaintext. */
  secrets: z.array(sealedSecret).min(1),
  last_success_at: z.string().nullable(),
  /** The first failure since the last success (null while healthy). */
  failing_since: z.string().nullable(),
  /** Why the service turned it off (null when active, or turned off by the organization). */
  disabled_reason: z.string().nullable(),
});
export type EndpointItem = z.infer<typeof endpointItem>;

export function toEndpoint(item: EndpointItem): WebhookEndpoint {
  const health = !item.is_active ? "disabled" : item.failing_since ? "failing" : "healthy";
  return webhookEndpointSchema.parse({ ...item, health });
}

/** An organization's endpoints are bounded, so one event's deliveries fit in one transaction. */
export const MAX_ENDPOINTS_PER_ORG = 20;
/** A rotated secret keeps signing beside the new one this long. */
export const SECRET_OVERLAP_MS = 24 * 3600 * 1000;

async function checkedUrl(deps: Pick<Deps, "webhookPolicy">, raw: string): Promise<string> {
  try {
    return (await checkWebhookUrl(raw, deps.webhookPolicy)).toString();
  } catch (err) {
    if (err instanceof DestinationRefused) throw new AppError("bad_request", err.message);
    throw err;
  }
}

export async function listEndpointItems(deps: Pick<Deps, "ddb" | "table">, orgId: string): Promise<EndpointItem[]> {
  return queryAll(deps, endpointItem, {
    KeyConditionExpression: "pk = :p AND begins_with(sk, :w)",
    ExpressionAttributeValues: { ":p": keys.organization(orgId).pk, ":w": keys.webhookEndpointPrefix },
    ScanIndexForward: false,
    ConsistentRead: true,
  });
}

export async function getEndpointItem(deps: Pick<Deps, "ddb" | "table">, orgId: string, id: string): Promise<EndpointItem | undefined> {
  if (!/^whe_[0-9a-z]{26}$/.test(id)) return undefined;
  return getItem(deps, endpointItem, keys.webhookEndpoint(orgId, id));
}

/** The endpoint, or a 404 that says the same for another organization's and for none. */
export async function requireEndpoint(deps: Pick<Deps, "ddb" | "table">, orgId: string, id: string): Promise<EndpointItem> {
  const item = await getEndpointItem(deps, orgId, id);
  if (!item) throw new AppError("not_found", `webhook endpoint ${id} not found`);
  return item;
}

/** Creates an endpoint; the plaintext secret is returned this once and stored sealed. */
export async function createEndpoint(
  deps: Db & Pick<Deps, "secretKey" | "webhookPolicy">,
  orgId: string,
  input: z.infer<typeof endpointInput>,
): Promise<{ item: EndpointItem; secret: string }> {
  const data = endpointInput.parse(input);
  const url = await checkedUrl(deps, data.url);
  const existing = await listEndpointItems(deps, orgId);
  if (existing.length >= MAX_ENDPOINTS_PER_ORG) {
    throw new AppError("conflict", `an organization has at most ${MAX_ENDPOINTS_PER_ORG} webhook endpoints: delete one first`);
  }
  const now = iso(deps.now());
  const secret = newWebhookSecret();
  const item: EndpointItem = {
    item_type: "webhook_endpoint",
    id: newId("webhookEndpoint", deps.now()),
    organization_id: orgId,
    url,
    description: data.description ?? "",
    event_types: [...new Set(data.event_types ?? [])],
    is_active: true,
    secrets: [{ sealed: seal(deps.secretKey, secret), created_at: now, expires_at: null }],
    last_success_at: null,
    failing_since: null,
    disabled_reason: null,
    created_at: now,
    updated_at: now,
  };
  await putItem(deps, { ...keys.webhookEndpoint(orgId, item.id), ...item }, { condition: "attribute_not_exists(pk)" });
  return { item, secret };
}

/** Changes what is given. Turning an endpoint back on forgets its failing streak. */
export async function updateEndpoint(
  deps: Db & Pick<Deps, "webhookPolicy">,
  orgId: string,
  id: string,
  patch: z.infer<typeof endpointPatch>,
): Promise<EndpointItem> {
  const data = endpointPatch.parse(patch);
  const current = await requireEndpoint(deps, orgId, id);
  const fields: Record<string, unknown> = { updated_at: iso(deps.now()) };
  if (data.url !== undefined) fields.url = await checkedUrl(deps, data.url);
  if (data.description !== undefined) fields.description = data.description;
  if (data.event_types !== undefined) fields.event_types = [...new Set(data.event_types)];
  if (data.is_active !== undefined) {
    fields.is_active = data.is_active;
    if (data.is_active && !current.is_active) Object.assign(fields, { failing_since: null, disabled_reason: null });
  }
  return updateItem(
    deps,
    endpointItem,
    { Key: keys.webhookEndpoint(orgId, id), ...setFields(fields), ConditionExpression: "attribute_exists(pk)" },
    `webhook endpoint ${id} not found`,
  ).catch((err: unknown) => {
    if (err instanceof AppError && err.code === "conflict") throw new AppError("not_found", `webhook endpoint ${id} not found`);
    throw err;
  });
}

/** Deletes the endpoint; its pending deliveries fail when they come up ("the endpoint was deleted"). */
export async function deleteEndpoint(deps: Db, orgId: string, id: string): Promise<EndpointItem> {
  const current = await requireEndpoint(deps, orgId, id);
  if (!(await deleteItemIf(deps, keys.webhookEndpoint(orgId, id), { condition: "attribute_exists(pk)" }))) {
    throw new AppError("not_found", `webhook endpoint ${id} not found`);
  }
  return { ...current, is_active: false, updated_at: iso(deps.now()) };
}

/**
 * A new secret; the current one keeps signing for `overlapMs` beside it (secrets already past
 * their overlap are dropped). Conditional on the newest secret read, so two rotations at once
 * cannot lose one another's secret.
 */
export async function rotateSecret(
  deps: Db & Pick<Deps, "secretKey">,
  orgId: string,
  id: string,
  overlapMs = SECRET_OVERLAP_MS,
): Promise<{ item: EndpointItem; secret: string }> {
  const current = await requireEndpoint(deps, orgId, id);
  const now = deps.now();
  const at = iso(now);
  const until = iso(new Date(now.getTime() + overlapMs));
  const secret = newWebhookSecret();
  const kept = current.secrets
    .filter((s) => s.expires_at === null || s.expires_at > at)
    .map((s) => ({ ...s, expires_at: s.expires_at === null || s.expires_at > until ? until : s.expires_at }));
  const secrets = [{ sealed: seal(deps.secretKey, secret), created_at: at, expires_at: null }, ...kept];
  const set = setFields({ secrets, updated_at: at });
  const item = await updateItem(
    deps,
    endpointItem,
    {
      Key: keys.webhookEndpoint(orgId, id),
      ...set,
      // The newest secret is unique (random nonce): unchanged means no rotation came in between.
      ConditionExpression: "attribute_exists(pk) AND #secrets[0].sealed = :was",
      ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":was": current.secrets[0]!.sealed },
    },
    "the secret was rotated concurrently: try again",
  );
  return { item, secret };
}

/** The plaintext secrets that sign a delivery now: the current one, and a rotated one in its overlap. */
export function signingSecrets(deps: Pick<Deps, "secretKey">, item: EndpointItem, now: Date): string[] {
  const at = iso(now);
  return item.secrets.filter((s) => s.expires_at === null || s.expires_at > at).map((s) => open(deps.secretKey, s.sealed));
}

/** A delivery succeeded: the endpoint is healthy again. */
export async function recordEndpointSuccess(deps: Db, item: EndpointItem): Promise<void> {
  const at = iso(deps.now());
  // Gone (deleted meanwhile): nothing to record.
  await updateItemIf(deps, endpointItem, {
    Key: keys.webhookEndpoint(item.organization_id, item.id),
    UpdateExpression: "SET last_success_at = :at, failing_since = :null",
    ConditionExpression: "attribute_exists(pk)",
    ExpressionAttributeValues: { ":at": at, ":null": null },
  });
}

/**
 * A delivery attempt failed. The first failure after a success starts the endpoint's failing
 * streak; an endpoint whose deliveries have all failed for `disableAfterMs` is turned off, and says
 * why in its health. Returns true when this call turned it off.
 */
export async function recordEndpointFailure(deps: Db & Pick<Deps, "log">, item: EndpointItem, disableAfterMs: number): Promise<boolean> {
  const now = deps.now();
  const at = iso(now);
  const started = await updateItemIf(deps, endpointItem, {
    Key: keys.webhookEndpoint(item.organization_id, item.id),
    // `if_not_exists` does not treat a stored null as absent, hence the two-step condition.
    UpdateExpression: "SET failing_since = :at",
    ConditionExpression: "attribute_exists(pk) AND (attribute_not_exists(failing_since) OR failing_since = :null)",
    ExpressionAttributeValues: { ":at": at, ":null": null },
  });
  const since = started ? (started.failing_since ?? at) : ((await getEndpointItem(deps, item.organization_id, item.id))?.failing_since ?? null);
  if (!since || now.getTime() - Date.parse(since) < disableAfterMs) return false;
  const reason = `every delivery failed since ${since}`;
  const disabled = await updateItemIf(deps, endpointItem, {
    Key: keys.webhookEndpoint(item.organization_id, item.id),
    UpdateExpression: "SET is_active = :off, disabled_reason = :why, updated_at = :at",
    ConditionExpression: "is_active = :on AND failing_since = :since",
    ExpressionAttributeValues: { ":off": false, ":on": true, ":why": reason, ":at": at, ":since": since },
  });
  if (!disabled) return false;
  deps.log.warn("webhook endpoint disabled: its deliveries failed for too long", {
    endpoint_id: item.id,
    organization_id: item.organization_id,
    failing_since: since,
  });
  return true;
}
