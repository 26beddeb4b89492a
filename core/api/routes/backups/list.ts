import { createRoute } from "@hono/zod-openapi";
import { listBackups, toBackup } from "../../../backups/backups.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { ListBackupsQuery, ListBackupsResponse } from "../../../contract/backups.ts";

export const listBackupsRoute = createRoute({
  method: "get",
  path: "/v1/projects/{projectID}/backups",
  tags: ["Backups"],
  summary: "List the project's backups, newest first",
  security,
  middleware: [projectAccess("backups:read")] as const,
  request: { params: ProjectParams, query: ListBackupsQuery },
  responses: {
    200: {
      description: "The backups; `x-next-cursor` is set when more remain",
      headers: { "x-next-cursor": { schema: { type: "string" }, description: "Cursor of the next page" } },
      content: { "application/json": { schema: ListBackupsResponse } },
    },
    ...errorResponses(400, 401, 403, 404),
  },
});

export function registerListBackups(app: App, r: RouteDeps) {
  app.openapi(listBackupsRoute, async (c) => {
    const project = c.var.project;
    const { limit, cursor } = c.req.valid("query");
    const page = await listBackups(r.deps, project.id, limit, cursor);
    if (page.cursor) c.header("x-next-cursor", page.cursor);
    return c.json({ backups: page.items.map(toBackup) }, 200);
  });
}
