import { createRoute } from "@hono/zod-openapi";
import { listJobs, toJob } from "../../../jobs/jobs.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { ListJobsQuery, ListJobsResponse } from "../../../contract/jobs.ts";

export const listJobsRoute = createRoute({
  method: "get",
  path: "/v1/projects/{projectID}/jobs",
  tags: ["Jobs"],
  summary: "List the project's jobs, newest first",
  security,
  middleware: [projectAccess("jobs:read")] as const,
  request: { params: ProjectParams, query: ListJobsQuery },
  responses: {
    200: {
      description: "The jobs; `x-next-cursor` is set when more remain",
      headers: { "x-next-cursor": { schema: { type: "string" }, description: "Cursor of the next page" } },
      content: { "application/json": { schema: ListJobsResponse } },
    },
    ...errorResponses(400, 401, 403, 404),
  },
});

export function registerListJobs(app: App, r: RouteDeps) {
  app.openapi(listJobsRoute, async (c) => {
    const project = c.var.project;
    const { limit, cursor } = c.req.valid("query");
    const page = await listJobs(r.deps, project.id, limit, cursor);
    if (page.cursor) c.header("x-next-cursor", page.cursor);
    return c.json({ jobs: page.items.map(toJob) }, 200);
  });
}
