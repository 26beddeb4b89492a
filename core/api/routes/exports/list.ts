import { createRoute } from "@hono/zod-openapi";
import { listExports, toExport } from "../../../exports/exports.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { ListExportsQuery, ListExportsResponse } from "../../../contract/exports.ts";

export const listExportsRoute = createRoute({
  method: "get",
  path: "/v1/projects/{projectID}/exports",
  tags: ["Exports"],
  summary: "List the project's exports, newest first (expired ones stay listed)",
  security,
  middleware: [projectAccess("backups:read")] as const,
  request: { params: ProjectParams, query: ListExportsQuery },
  responses: {
    200: {
      description: "The exports; `x-next-cursor` is set when more remain",
      headers: { "x-next-cursor": { schema: { type: "string" }, description: "Cursor of the next page" } },
      content: { "application/json": { schema: ListExportsResponse } },
    },
    ...errorResponses(400, 401, 403, 404, 503),
  },
});

export function registerListExports(app: App, r: RouteDeps) {
  app.openapi(listExportsRoute, async (c) => {
    const project = c.var.project;
    const { limit, cursor } = c.req.valid("query");
    const page = await listExports(r.deps, project.id, limit, cursor);
    if (page.cursor) c.header("x-next-cursor", page.cursor);
    return c.json({ exports: page.items.map(toExport) }, 200);
  });
}
