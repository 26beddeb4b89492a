import { userInfo } from "node:os";
import type { TransactWriteCommandInput } from "@aws-sdk/lib-dynamodb";
import { z } from "../zod.ts";
import { auditEventSchema } from "../contract/audit-events.ts";
import type { Principal } from "../auth/principal.ts";
import { keys, ttlAt } from "../db/keys.ts";
import { putItem, queryPage, type Page } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { newId } from "../ids.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;
type TransactItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

/**
 * The audit trail: one append-only record per accepted state-changing request (and per
 * destructive step a job takes on a caller's behalf). Records are written with
 * `attribute_not_exists`, no code path updates or deletes one, and no route changes them; DynamoDB's
 * TTL removes them a year after they were written.
 */
export const AUDIT_RETENTION_DAYS = 365;

/** Who acted. `operator` is `capydb-admin` on the store; `system` is a job acting for a recorded requester. */
export const actorKinds = ["api_key", "clerk_session", "operator", "system"] as const;
export type ActorKind = (typeof actorKinds)[number];
export interface Actor {
  kind: ActorKind;
  id: string;
}

/**
 * Every action the trail knows, `<target>.<verb>`. Adding a state change elsewhere: add its action
 * here and write `auditItem(...)` in the same transaction as the change.
 */
export const auditActions = [
  "backup.requested",
  "backup.download_url_issued",
  "scheduled_backup.updated",
  "api_key.created",
  "api_key.revoked",
  "cli_login.approved",
  "cli_login.denied",
  "approval.created",
  "approval.used",
  "restore.requested",
  "restore_point.created",
  "restore_point.deleted",
  "preview.created",
  "preview.deleted",
  "preview.extended",
  "preview.reset",
  "preview.promote_requested",
  "preview.promoted",
  "project.restore_overwrite_requested",
  "project.restore_overwritten",
  "export.requested",
  "export.download_url_issued",
  "webhook_endpoint.created",
  "webhook_endpoint.updated",
  "webhook_endpoint.deleted",
  "webhook_endpoint.secret_rotated",
] as const;
export type AuditAction = (typeof auditActions)[number];

export type AuditEvent = z.infer<typeof auditEventSchema>;

export const auditEventItem = auditEventSchema.extend({ item_type: z.literal("audit_event") });
export type AuditEventItem = z.infer<typeof auditEventItem>;

export const toAuditEvent = (item: AuditEventItem): AuditEvent => auditEventSchema.parse(item);

export const auditInput = z.object({
  organization_id: z.string().min(1),
  project_id: z.string().min(1).nullable(),
  action: z.enum(auditActions),
  actor: z.object({ kind: z.enum(actorKinds), id: z.string().min(1) }),
  target_type: z.string().min(1),
  target_id: z.string().min(1),
  /** The ids a later investigation needs. Never secrets: no tokens, passwords or connection strings. */
  metadata: z.record(z.string(), z.unknown()).default({}),
});
export type AuditInput = z.input<typeof auditInput>;

/** The actor of an API request. */
export function actorOf(p: Principal): Actor {
  return p.auth_source === "api_key" ? { kind: "api_key", id: p.key_id ?? "unknown" } : { kind: "clerk_session", id: p.user_id ?? "unknown" };
}

/** The operator running `capydb-admin` (the OS user; `CAPYDB_OPERATOR` overrides it, e.g. in CI). */
export function operatorActor(env: NodeJS.ProcessEnv = process.env): Actor {
  let name = env.CAPYDB_OPERATOR?.trim();
  if (!name) {
    try {
      name = userInfo().username;
    } catch {
      name = "unknown";
    }
  }
  return { kind: "operator", id: name || "unknown" };
}

/** The stored record (with keys) for one event. */
export function newAuditRecord(deps: Pick<Deps, "now">, input: AuditInput): Record<string, unknown> & AuditEventItem {
  const data = auditInput.parse(input);
  const now = deps.now();
  const id = newId("audit", now);
  const event: AuditEventItem = {
    item_type: "audit_event",
    id,
    organization_id: data.organization_id,
    project_id: data.project_id,
    action: data.action,
    actor_kind: data.actor.kind,
    actor_id: data.actor.id,
    target_type: data.target_type,
    target_id: data.target_id,
    // JSON round trip: drops undefined values and anything DynamoDB could not store.
    metadata: JSON.parse(JSON.stringify(data.metadata)) as Record<string, unknown>,
    created_at: iso(now),
  };
  return {
    ...keys.auditEvent({ projectId: event.project_id, organizationId: event.organization_id }, id),
    gsi1pk: keys.orgAuditIndex(event.organization_id),
    gsi1sk: id,
    ttl: ttlAt(new Date(now.getTime() + AUDIT_RETENTION_DAYS * 86400_000)),
    ...event,
  };
}

/**
 * The event as one item of a `TransactWrite`, so it commits with the state change it records (or
 * not at all). Usage: `transactWrite(deps, [{ Put: ... the change ... }, auditItem(deps, {...})])`.
 */
export function auditItem(deps: Pick<Deps, "table" | "now">, input: AuditInput): TransactItem {
  return { Put: { TableName: deps.table, Item: newAuditRecord(deps, input), ConditionExpression: "attribute_not_exists(pk)" } };
}

/**
 * Writes one event on its own: for changes that cannot share a transaction with it (an S3 URL
 * signed, a job's step on a PostgreSQL server). Call it right after the change succeeded.
 */
export async function recordAudit(deps: Db, input: AuditInput): Promise<AuditEvent> {
  const record = newAuditRecord(deps, input);
  await putItem(deps, record, { condition: "attribute_not_exists(pk)" });
  return toAuditEvent(record);
}

/** A project's events, newest first (strongly consistent: the project's own partition). */
export async function listProjectAuditEvents(deps: Db, projectId: string, limit: number, cursor?: string): Promise<Page<AuditEventItem>> {
  return queryPage(
    deps,
    auditEventItem,
    {
      KeyConditionExpression: "pk = :p AND begins_with(sk, :a)",
      ExpressionAttributeValues: { ":p": keys.project(projectId).pk, ":a": keys.auditPrefix },
      ScanIndexForward: false,
      Limit: limit,
      ConsistentRead: true,
    },
    cursor,
  );
}

/** An organization's events (its projects' and its own), newest first. */
export async function listOrganizationAuditEvents(deps: Db, organizationId: string, limit: number, cursor?: string): Promise<Page<AuditEventItem>> {
  return queryPage(
    deps,
    auditEventItem,
    {
      IndexName: "gsi1",
      KeyConditionExpression: "gsi1pk = :p",
      ExpressionAttributeValues: { ":p": keys.orgAuditIndex(organizationId) },
      ScanIndexForward: false,
      Limit: limit,
    },
    cursor,
  );
}
