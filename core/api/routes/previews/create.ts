import { createRoute } from "@hono/zod-openapi";
import { auditRequest } from "../../audit-request.ts";
import { toJob } from "../../../jobs/jobs.ts";
import { createPreview } from "../../../previews/previews.ts";
import { newestVerifiedBackup } from "../../../restores/restores.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { previewView } from "../../../previews/previews.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { CreatePreviewRequest, CreatePreviewResponse } from "../../../contract/previews.ts";

export const createPreviewRoute = createRoute({
  method: "post",
  path: "/v1/projects/{projectID}/preview-databases",
  tags: ["Preview databases"],
  summary: "Create a preview database, empty or a clone of the newest verified backup",
  security,
  middleware: [projectAccess("projects:write")] as const,
  request: { params: ProjectParams, body: { required: true, content: { "application/json": { schema: CreatePreviewRequest } } } },
  responses: {
    202: { description: "The preview is provisioning; the job (branch.create) makes it", content: { "application/json": { schema: CreatePreviewResponse } } },
    ...errorResponses(400, 401, 403, 404, 409, 413, 415, 503),
  },
});

export function registerCreatePreview(app: App, r: RouteDeps) {
  app.openapi(createPreviewRoute, async (c) => {
    const project = c.var.project;
    const body = c.req.valid("json");
    const backupId = body.mode === "clone" ? (await newestVerifiedBackup(r.deps, project)).id : null;
    const { preview, job } = await createPreview(r.deps, project, {
      name: body.name,
      mode: body.mode,
      ttl_hours: body.ttl_hours,
      backupId,
      jobType: "branch.create",
    });
    await auditRequest(r, c, {
      project,
      action: "preview.created",
      target_type: "preview",
      target_id: preview.id,
      metadata: { preview_id: preview.id, job_id: job.id, name: preview.name, mode: preview.mode, source_backup_id: backupId, expires_at: preview.expires_at },
    });
    c.var.log.info("preview requested", { project_id: project.id, preview_id: preview.id, job_id: job.id, mode: preview.mode });
    return c.json({ preview: await previewView(r.deps, preview), job: toJob(job) }, 202);
  });
}
