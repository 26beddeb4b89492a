import { createRoute } from "@hono/zod-openapi";
import { listProjectAuditEvents, toAuditEvent } from "../../../audit/audit.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { ListAuditEventsQuery, listResponses } from "../../../contract/audit-events.ts";

export const listProjectAuditEventsRoute = createRoute({
  method: "get",
  path: "/v1/projects/{projectID}/audit-events",
  tags: ["Audit"],
  summary: "List the project's audit events (who changed what), newest first",
  security,
  middleware: [projectAccess("projects:read")] as const,
  request: { params: ProjectParams, query: ListAuditEventsQuery },
  responses: { 200: listResponses, ...errorResponses(400, 401, 403, 404) },
});

export function registerListProjectAuditEvents(app: App, r: RouteDeps) {
  app.openapi(listProjectAuditEventsRoute, async (c) => {
    const project = c.var.project;
    const { limit, cursor } = c.req.valid("query");
    const page = await listProjectAuditEvents(r.deps, project.id, limit, cursor);
    if (page.cursor) c.header("x-next-cursor", page.cursor);
    return c.json({ audit_events: page.items.map(toAuditEvent) }, 200);
  });
}
