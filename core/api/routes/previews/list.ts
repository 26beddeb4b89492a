import { createRoute } from "@hono/zod-openapi";
import { listPreviews, previewViews } from "../../../previews/previews.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { ListPreviewsQuery, ListPreviewsResponse } from "../../../contract/previews.ts";

export const listPreviewsRoute = createRoute({
  method: "get",
  path: "/v1/projects/{projectID}/preview-databases",
  tags: ["Preview databases"],
  summary: "List the project's preview databases, newest first (deleted ones too, with their state)",
  security,
  middleware: [projectAccess("projects:read")] as const,
  request: { params: ProjectParams, query: ListPreviewsQuery },
  responses: {
    200: {
      description: "The previews; `x-next-cursor` is set when more remain",
      headers: { "x-next-cursor": { schema: { type: "string" }, description: "Cursor of the next page" } },
      content: { "application/json": { schema: ListPreviewsResponse } },
    },
    ...errorResponses(400, 401, 403, 404),
  },
});

export function registerListPreviews(app: App, r: RouteDeps) {
  app.openapi(listPreviewsRoute, async (c) => {
    const project = c.var.project;
    const { limit, cursor } = c.req.valid("query");
    const page = await listPreviews(r.deps, project.id, limit, cursor);
    if (page.cursor) c.header("x-next-cursor", page.cursor);
    return c.json({ preview_databases: await previewViews(r.deps, page.items) }, 200);
  });
}
