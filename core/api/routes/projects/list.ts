import { createRoute } from "@hono/zod-openapi";
import { getProject, listProjects, type Project } from "../../../orgs/orgs.ts";
import { projectViews } from "../../../orgs/views.ts";
import { scopeAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security, unpagedQuery } from "../../../contract/shared.ts";
import { ListProjectsResponse } from "../../../contract/projects.ts";

export const listProjectsRoute = createRoute({
  method: "get",
  path: "/v1/projects",
  tags: ["Projects"],
  summary: "List the caller's projects (a project-scoped key sees its one project)",
  security,
  middleware: [scopeAccess("projects:read")] as const,
  request: { query: unpagedQuery("every project the caller may see") },
  responses: {
    200: { description: "The projects, oldest first", content: { "application/json": { schema: ListProjectsResponse } } },
    ...errorResponses(401, 403),
  },
});

export function registerListProjects(app: App, r: RouteDeps) {
  app.openapi(listProjectsRoute, async (c) => {
    const p = c.var.principal;
    let projects: Project[];
    if (p.project_id) {
      const one = await getProject(r.deps, p.project_id);
      projects = one && one.organization_id === p.organization_id ? [one] : [];
    } else {
      projects = await listProjects(r.deps, p.organization_id);
    }
    return c.json({ projects: await projectViews(r.deps, projects) }, 200);
  });
}
