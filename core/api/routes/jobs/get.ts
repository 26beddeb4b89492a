import { createRoute } from "@hono/zod-openapi";
import { z } from "../../../zod.ts";
import { AppError } from "../../../errors.ts";
import { isId } from "../../../ids.ts";
import { getJobItem, toJob } from "../../../jobs/jobs.ts";
import { scopeAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { GetJobResponse } from "../../../contract/jobs.ts";

export const getJobRoute = createRoute({
  method: "get",
  path: "/v1/jobs/{jobID}",
  tags: ["Jobs"],
  summary: "Get a job",
  security,
  middleware: [scopeAccess("jobs:read")] as const,
  request: {
    params: z.object({
      jobID: z
        .string()
        .min(1)
        .openapi({ param: { name: "jobID", in: "path" }, description: "Job id." }),
    }),
  },
  responses: {
    200: { description: "The job", content: { "application/json": { schema: GetJobResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerGetJob(app: App, r: RouteDeps) {
  app.openapi(getJobRoute, async (c) => {
    const { jobID } = c.req.valid("param");
    const p = c.var.principal;
    const job = isId("job", jobID) ? await getJobItem(r.deps, jobID) : undefined;
    // Another organization's job, or one outside a project-scoped key, is indistinguishable from none.
    if (!job || job.organization_id !== p.organization_id || (p.project_id && p.project_id !== job.project_id)) {
      throw new AppError("not_found", `job ${jobID} not found`);
    }
    return c.json({ job: toJob(job) }, 200);
  });
}
