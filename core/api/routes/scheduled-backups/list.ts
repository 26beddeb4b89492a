import { createRoute } from "@hono/zod-openapi";
import { getSchedule, toScheduledBackup } from "../../../backups/schedules.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { ListScheduledBackupsResponse } from "../../../contract/scheduled-backups.ts";

export const listScheduledBackupsRoute = createRoute({
  method: "get",
  path: "/v1/projects/{projectID}/scheduled-backups",
  tags: ["Backups"],
  summary: "List the project's backup schedule (0 or 1 element, named `default`)",
  security,
  middleware: [projectAccess("backups:read")] as const,
  request: { params: ProjectParams },
  responses: {
    200: { description: "The schedules", content: { "application/json": { schema: ListScheduledBackupsResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerListScheduledBackups(app: App, r: RouteDeps) {
  app.openapi(listScheduledBackupsRoute, async (c) => {
    const project = c.var.project;
    const schedule = await getSchedule(r.deps, project.id);
    return c.json({ scheduled_backups: schedule ? [toScheduledBackup(schedule)] : [] }, 200);
  });
}
