import { actorOf } from "../../../audit/audit.ts";
import { createRoute } from "@hono/zod-openapi";
import { z } from "../../../zod.ts";
import { requestExport } from "../../../exports/exports.ts";
import { toJob } from "../../../jobs/jobs.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { CreateExportResponse } from "../../../contract/exports.ts";

export const createExportRoute = createRoute({
  method: "post",
  path: "/v1/projects/{projectID}/exports",
  tags: ["Exports"],
  summary: "Export the project's database (a pg_dump custom-format archive to download); answers the job that makes it",
  security,
  middleware: [projectAccess("backups:write")] as const,
  request: {
    params: ProjectParams,
    // No fields yet; a body, when sent, must be a JSON object (unknown fields are ignored).
    body: { required: false, content: { "application/json": { schema: z.object({}).openapi("CreateExportRequest") } } },
  },
  responses: {
    202: { description: "The export job was accepted", content: { "application/json": { schema: CreateExportResponse } } },
    ...errorResponses(400, 401, 403, 404, 413, 415, 503),
  },
});

export function registerCreateExport(app: App, r: RouteDeps) {
  app.openapi(createExportRoute, async (c) => {
    const project = c.var.project;
    const { export: exp, job } = await requestExport(r.deps, project, actorOf(c.var.principal));
    c.var.log.info("export requested", { project_id: project.id, export_id: exp.id, job_id: job.id });
    return c.json({ export_id: exp.id, job: toJob(job) }, 202);
  });
}
