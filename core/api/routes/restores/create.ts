import { createRoute } from "@hono/zod-openapi";
import { auditRequest } from "../../audit-request.ts";
import { actorOf } from "../../../audit/audit.ts";
import { toJob } from "../../../jobs/jobs.ts";
import { requestRestore } from "../../../restores/restores.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { CreateRestoreRequest, CreateRestoreResponse } from "../../../contract/restores.ts";

export const createRestoreRoute = createRoute({
  method: "post",
  path: "/v1/projects/{projectID}/restores",
  tags: ["Restores"],
  summary: "Restore a backup (or a restore point) into a new or an existing preview database, or over the project's database (approval required)",
  security,
  middleware: [projectAccess("backups:write")] as const,
  request: { params: ProjectParams, body: { required: true, content: { "application/json": { schema: CreateRestoreRequest } } } },
  responses: {
    202: {
      description: "The restore job (project.restore): preview_database_id set for a preview target, null for target_kind project",
      content: { "application/json": { schema: CreateRestoreResponse } },
    },
    ...errorResponses(400, 401, 403, 404, 409, 413, 415, 503),
  },
});

export function registerCreateRestore(app: App, r: RouteDeps) {
  app.openapi(createRestoreRoute, async (c) => {
    const project = c.var.project;
    // Validated by the domain's own schema (CreateRestoreRequest derives from it).
    const request = c.req.valid("json");
    const { job, pitr } = await requestRestore(r.deps, project, request, actorOf(c.var.principal));
    // An overwrite restore recorded its own event (project.restore_overwrite_requested) with the approval's use.
    if (request.target_kind !== "project")
      await auditRequest(r, c, {
        project,
        action: "restore.requested",
        target_type: "job",
        target_id: job.id,
        metadata: {
          job_id: job.id,
          preview_id: job.preview_database_id,
          backup_id: job.backup_id,
          target_kind: request.target_kind,
          ...(pitr ? { restore_time: pitr.restore_time, restore_time_clamped: pitr.restore_time_clamped } : {}),
          // A restore into an existing preview replaces its data: the trail says so, and how.
          ...(request.target_kind === "preview" ? { replaces_data: true, recreate: request.recreate } : {}),
        },
      });
    c.var.log.info("restore requested", { project_id: project.id, job_id: job.id, preview_id: job.preview_database_id, restore_time: pitr?.restore_time });
    return c.json(pitr ? { job: toJob(job), pitr } : { job: toJob(job) }, 202);
  });
}
