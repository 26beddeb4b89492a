import { z } from "../zod.ts";
import { listQuery } from "./shared.ts";

/** The AuditEvent as the API shows it (SPEC section 5): exactly these fields. */
export const auditEventSchema = z.object({
  id: z.string(),
  organization_id: z.string(),
  project_id: z.string().nullable(),
  // Stored actions are read as strings, so a record written by a newer version still lists.
  action: z.string(),
  actor_kind: z.string(),
  actor_id: z.string(),
  target_type: z.string(),
  target_id: z.string(),
  metadata: z.record(z.string(), z.unknown()),
  created_at: z.string(),
});

/** The AuditEvent wire schema (SPEC section 5), named for the OpenAPI document. */
export const AuditEvent = auditEventSchema
  .extend({
    project_id: z.string().nullable().openapi({ description: "Null for organization-level events (API keys, webhooks)." }),
    action: z.string().openapi({ description: "What happened, `<target>.<verb>`: backup.requested, approval.used, preview.promoted, ..." }),
    actor_kind: z.string().openapi({ description: "api_key, clerk_session, operator (capydb-admin) or system (a job acting for the recorded requester)." }),
    metadata: z.record(z.string(), z.unknown()).openapi({ description: "The ids a later investigation needs (for a promote: the safety backup's id)." }),
    created_at: z.string().openapi({ type: "string", format: "date-time", example: "2026-11-26T02:15:00Z" }),
  })
  .openapi("AuditEvent");

export const ListAuditEventsQuery = listQuery(100, 25);
export const ListAuditEventsResponse = z.object({ audit_events: z.array(AuditEvent) });

export const listResponses = {
  description:
    "The events, newest first; `x-next-cursor` is set when more remain. Records cannot be changed or deleted through the API; they are kept for a year.",
  headers: { "x-next-cursor": { schema: { type: "string" as const }, description: "Cursor of the next page" } },
  content: { "application/json": { schema: ListAuditEventsResponse } },
};
