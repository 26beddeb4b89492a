import { createRoute } from "@hono/zod-openapi";
import { projectView } from "../../../orgs/views.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { GetProjectResponse } from "../../../contract/projects.ts";

export const getProjectRoute = createRoute({
  method: "get",
  path: "/v1/projects/{projectID}",
  tags: ["Projects"],
  summary: "Get a project",
  security,
  middleware: [projectAccess("projects:read")] as const,
  request: { params: ProjectParams },
  responses: {
    200: { description: "The project", content: { "application/json": { schema: GetProjectResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerGetProject(app: App, r: RouteDeps) {
  app.openapi(getProjectRoute, async (c) => {
    return c.json({ project: await projectView(r.deps, c.var.project) }, 200);
  });
}
