import type { TransactWriteCommandInput } from "@aws-sdk/lib-dynamodb";
import { z } from "../zod.ts";
import { eventTypeSchema, type EventType } from "../contract/events.ts";
import { keys, ttlAt } from "../db/keys.ts";
import { getItem } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { newId } from "../ids.ts";

/**
 * The transactional outbox. An event is an item written in the same DynamoDB transaction as the
 * state change it announces, so the change and its announcement commit together or not at all: a
 * crash after the commit cannot lose the event, and a transaction that fails writes neither.
 * Until the relay has turned it into webhook deliveries, the event sits in a sparse index
 * (gsi2 `OUTBOX / <created_at>#<evt>`) that the relay reads (core/webhooks/relay.ts).
 *
 * @example a state change announcing itself (any module):
 *   await transactWrite(deps, [
 *     { Update: { ...the state change, with its condition... } },
 *     outboxPut(deps, { type: "restore.completed", organization_id, project_id, data: { ... } }),
 *   ]);
 */

/** The events a webhook endpoint can subscribe to: part of the wire contract (core/contract/events.ts). */
export { eventTypes, eventTypeSchema, type EventType } from "../contract/events.ts";

/** A delivery that `POST .../test` sends; not an event of the outbox, and not subscribable. */
export const testEventType = "webhook.test";

/** What a receiver gets as the request body: `{"id": "evt_...", "type", "created_at", "data"}`. */
export const webhookEventSchema = z.object({
  id: z.string(),
  type: z.string(),
  created_at: z.string(),
  data: z.record(z.string(), z.unknown()),
});
export type WebhookEvent = z.infer<typeof webhookEventSchema>;

/** The stored event. `body` is the exact JSON a receiver gets (signed byte for byte). */
export const eventItem = z.object({
  item_type: z.literal("event"),
  id: z.string(),
  type: eventTypeSchema,
  organization_id: z.string(),
  project_id: z.string().nullable(),
  created_at: z.string(),
  body: z.string(),
  /** When the relay fanned it out to the endpoints (null while it waits in the outbox). */
  relayed_at: z.string().nullable(),
  /** How many deliveries the relay created (0: no endpoint subscribed). */
  delivery_count: z.number().int().nullable(),
});
export type EventItem = z.infer<typeof eventItem>;

/** Events are kept this long after they happen (deliveries keep their own copy of the body). */
export const EVENT_RETENTION_DAYS = 30;

export interface EventSpec {
  type: EventType;
  organization_id: string;
  project_id: string | null;
  data: Record<string, unknown>;
}

export type TransactItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

/** The stored item (with its keys and outbox index entry) of a new event. */
export function newEventItem(spec: EventSpec, now: Date): EventItem & Record<string, unknown> {
  const id = newId("event", now);
  const created = iso(now);
  const body = JSON.stringify({ id, type: spec.type, created_at: created, data: spec.data } satisfies WebhookEvent);
  return {
    ...keys.event(id),
    gsi2pk: keys.outboxIndex,
    gsi2sk: `${created}#${id}`,
    ttl: ttlAt(new Date(now.getTime() + EVENT_RETENTION_DAYS * 86400_000)),
    item_type: "event",
    id,
    type: spec.type,
    organization_id: spec.organization_id,
    project_id: spec.project_id,
    created_at: created,
    body,
    relayed_at: null,
    delivery_count: null,
  };
}

/**
 * The TransactWrite item that records `spec` in the outbox: add it to the transaction of the state
 * change the event announces. The event commits exactly when the change does; the relay delivers
 * it to every subscribed endpoint at least once.
 */
export function outboxPut(deps: Pick<Deps, "table" | "now">, spec: EventSpec): TransactItem {
  const item = newEventItem(spec, deps.now());
  return { Put: { TableName: deps.table, Item: item, ConditionExpression: "attribute_not_exists(pk)" } };
}

export async function getEvent(deps: Pick<Deps, "ddb" | "table">, id: string): Promise<EventItem | undefined> {
  return getItem(deps, eventItem, keys.event(id));
}

// ---------------------------------------------------------------------------------------------
// The events of the backup worker and the job state machine.

/** `job.completed` / `job.failed` data: which job, what it was, how it ended. */
export function jobEvent(
  job: {
    id: string;
    organization_id: string;
    project_id: string;
    type: string;
    attempts: number;
    max_attempts: number;
    backup_id?: string | null;
    preview_database_id?: string | null;
  },
  outcome: { state: "completed" } | { state: "failed"; error: string; retry_classification: string | null },
  at: string,
): EventSpec {
  return {
    type: outcome.state === "completed" ? "job.completed" : "job.failed",
    organization_id: job.organization_id,
    project_id: job.project_id,
    data: {
      project_id: job.project_id,
      job_id: job.id,
      job_type: job.type,
      state: outcome.state,
      attempts: job.attempts,
      max_attempts: job.max_attempts,
      backup_id: job.backup_id ?? null,
      preview_database_id: job.preview_database_id ?? null,
      error: outcome.state === "failed" ? outcome.error : null,
      retry_classification: outcome.state === "failed" ? outcome.retry_classification : null,
      completed_at: at,
    },
  };
}

/** `backup.completed` data (SPEC: project_id, backup_id, job_id, backup_key, size_bytes, state, verification_state). */
export function backupCompletedEvent(backup: {
  id: string;
  organization_id: string;
  project_id: string;
  job_id: string;
  database_name: string;
  label: string;
  backup_key: string;
  size_bytes: number;
  sha256: string | null;
  verified_at: string | null;
}): EventSpec {
  return {
    type: "backup.completed",
    organization_id: backup.organization_id,
    project_id: backup.project_id,
    data: {
      project_id: backup.project_id,
      backup_id: backup.id,
      job_id: backup.job_id,
      database_name: backup.database_name,
      label: backup.label,
      backup_key: backup.backup_key,
      size_bytes: backup.size_bytes,
      sha256: backup.sha256,
      state: "completed",
      verification_state: "verified",
      verified_at: backup.verified_at,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The events of previews, restores and exports. Each is written by the transition that makes it
// true (core/previews/previews.ts, core/exports/exports.ts), under a condition on the state it
// leaves, so a redelivered job message or a repair of a lost write cannot announce it twice.

/** What a preview event says about the preview: never its password or connection string. */
interface PreviewFacts {
  id: string;
  organization_id: string;
  project_id: string;
  name: string;
  mode: string;
  database_name: string;
  source_backup_id: string | null;
  expires_at: string;
}

function previewData(p: PreviewFacts, jobId: string) {
  return {
    project_id: p.project_id,
    preview_id: p.id,
    job_id: jobId,
    name: p.name,
    mode: p.mode,
    database_name: p.database_name,
    source_backup_id: p.source_backup_id,
    expires_at: p.expires_at,
  };
}

/** `preview.ready`: created, cloned, reset or restored into, and checked; connect with `/connections`. */
export function previewReadyEvent(p: PreviewFacts, jobId: string, at: string): EventSpec {
  return {
    type: "preview.ready",
    organization_id: p.organization_id,
    project_id: p.project_id,
    data: { ...previewData(p, jobId), state: "ready", ready_at: at },
  };
}

/** `preview.deleted`: its database and login role are dropped (on request or at expiry). */
export function previewDeletedEvent(p: PreviewFacts, jobId: string, at: string): EventSpec {
  return {
    type: "preview.deleted",
    organization_id: p.organization_id,
    project_id: p.project_id,
    data: { ...previewData(p, jobId), state: "deleted", deleted_at: at },
  };
}

/**
 * `restore.completed`: a backup was restored and checked, into a preview (`target_kind: "preview"`,
 * `preview_id` set) or over the project's database (`"project"`; `extra` adds what that restore
 * kept: the safety backup, the preview holding the old data). One shape for both, so receivers
 * read one event.
 */
export function restoreCompletedEvent(
  r: {
    organization_id: string;
    project_id: string;
    job_id: string;
    backup_id: string | null;
    backup_key: string | null;
    target_kind: "preview" | "project";
    preview_id: string | null;
    database_name: string;
    completed_at: string;
  },
  extra: Record<string, unknown> = {},
): EventSpec {
  return {
    type: "restore.completed",
    organization_id: r.organization_id,
    project_id: r.project_id,
    data: {
      project_id: r.project_id,
      job_id: r.job_id,
      backup_id: r.backup_id,
      backup_key: r.backup_key,
      target_kind: r.target_kind,
      preview_id: r.preview_id,
      database_name: r.database_name,
      state: "completed",
      completed_at: r.completed_at,
      ...extra,
    },
  };
}

/** `export.completed`: the dump is stored; `GET .../exports/{export_id}/download` answers a signed URL until `expires_at`. */
export function exportCompletedEvent(
  e: {
    id: string;
    organization_id: string;
    project_id: string;
    job_id: string;
    database_name: string;
    size_bytes: number;
    sha256: string | null;
    expires_at: string;
  },
  at: string,
): EventSpec {
  return {
    type: "export.completed",
    organization_id: e.organization_id,
    project_id: e.project_id,
    data: {
      project_id: e.project_id,
      export_id: e.id,
      job_id: e.job_id,
      database_name: e.database_name,
      size_bytes: e.size_bytes,
      sha256: e.sha256,
      state: "completed",
      expires_at: e.expires_at,
      completed_at: at,
    },
  };
}
