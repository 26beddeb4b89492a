import { createRoute } from "@hono/zod-openapi";
import { listOrganizationAuditEvents, toAuditEvent } from "../../../audit/audit.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { OrgParams, security } from "../../../contract/shared.ts";
import { ListAuditEventsQuery, listResponses } from "../../../contract/audit-events.ts";

export const listOrganizationAuditEventsRoute = createRoute({
  method: "get",
  path: "/v1/organizations/{orgID}/audit-events",
  tags: ["Audit"],
  summary: "List the organization's audit events (its projects' and its own), newest first",
  security,
  middleware: [orgAccess("organizations:read")] as const,
  request: { params: OrgParams, query: ListAuditEventsQuery },
  responses: { 200: listResponses, ...errorResponses(400, 401, 403, 404) },
});

export function registerListOrganizationAuditEvents(app: App, r: RouteDeps) {
  app.openapi(listOrganizationAuditEventsRoute, async (c) => {
    const { orgID } = c.req.valid("param");
    const { limit, cursor } = c.req.valid("query");
    const page = await listOrganizationAuditEvents(r.deps, orgID, limit, cursor);
    if (page.cursor) c.header("x-next-cursor", page.cursor);
    return c.json({ audit_events: page.items.map(toAuditEvent) }, 200);
  });
}
