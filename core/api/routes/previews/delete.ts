import { createRoute } from "@hono/zod-openapi";
import { auditRequest } from "../../audit-request.ts";
import { toJob } from "../../../jobs/jobs.ts";
import { requestPreviewDelete } from "../../../previews/previews.ts";
import { previewAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { DeletePreviewResponse, PreviewParams } from "../../../contract/previews.ts";

export const deletePreviewRoute = createRoute({
  method: "delete",
  path: "/v1/preview-databases/{previewID}",
  tags: ["Preview databases"],
  summary: "Delete a preview database: the job (instance.destroy) drops its database and its role",
  security,
  middleware: [previewAccess("projects:write")] as const,
  request: { params: PreviewParams },
  responses: {
    202: { description: "The preview is deleting", content: { "application/json": { schema: DeletePreviewResponse } } },
    ...errorResponses(401, 403, 404, 409, 503),
  },
});

export function registerDeletePreview(app: App, r: RouteDeps) {
  app.openapi(deletePreviewRoute, async (c) => {
    const { preview, project } = c.var;
    const { job } = await requestPreviewDelete(r.deps, project, preview);
    await auditRequest(r, c, {
      project,
      action: "preview.deleted",
      target_type: "preview",
      target_id: preview.id,
      metadata: { preview_id: preview.id, job_id: job.id, name: preview.name },
    });
    c.var.log.info("preview deletion requested", { project_id: project.id, preview_id: preview.id, job_id: job.id });
    return c.json({ job: toJob(job) }, 202);
  });
}
