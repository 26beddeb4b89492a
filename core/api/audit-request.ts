import type { Context } from "hono";
import { actorOf, recordAudit, type AuditAction } from "../audit/audit.ts";
import type { AppEnv, RouteDeps } from "./context.ts";

/**
 * Records an accepted request in the audit trail, right after the change it made committed (for
 * domain functions that own their transaction; inside it, use `auditItem`). The actor is the
 * request's principal.
 */
export async function auditRequest(
  r: Pick<RouteDeps, "deps">,
  c: Context<AppEnv>,
  event: { project: { id: string; organization_id: string }; action: AuditAction; target_type: string; target_id: string; metadata?: Record<string, unknown> },
): Promise<void> {
  await recordAudit(r.deps, {
    organization_id: event.project.organization_id,
    project_id: event.project.id,
    action: event.action,
    actor: actorOf(c.var.principal),
    target_type: event.target_type,
    target_id: event.target_id,
    metadata: event.metadata ?? {},
  });
}
