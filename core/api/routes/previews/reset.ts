import { createRoute } from "@hono/zod-openapi";
import { auditRequest } from "../../audit-request.ts";
import { toJob } from "../../../jobs/jobs.ts";
import { requestPreviewReset } from "../../../previews/previews.ts";
import { newestVerifiedBackup } from "../../../restores/restores.ts";
import { previewAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { PreviewParams, ResetPreviewResponse } from "../../../contract/previews.ts";

export const resetPreviewRoute = createRoute({
  method: "post",
  path: "/v1/preview-databases/{previewID}/reset",
  tags: ["Preview databases"],
  summary: "Reset a preview: empty again, or re-cloned from the project's newest verified backup",
  security,
  middleware: [previewAccess("projects:write")] as const,
  request: { params: PreviewParams },
  responses: {
    202: { description: "The preview is resetting (job branch.create)", content: { "application/json": { schema: ResetPreviewResponse } } },
    ...errorResponses(401, 403, 404, 409, 503),
  },
});

export function registerResetPreview(app: App, r: RouteDeps) {
  app.openapi(resetPreviewRoute, async (c) => {
    const { preview, project } = c.var;
    const backupId = preview.mode === "clone" ? (await newestVerifiedBackup(r.deps, project)).id : null;
    const { job } = await requestPreviewReset(r.deps, project, preview, backupId);
    await auditRequest(r, c, {
      project,
      action: "preview.reset",
      target_type: "preview",
      target_id: preview.id,
      metadata: { preview_id: preview.id, job_id: job.id, source_backup_id: backupId },
    });
    return c.json({ job: toJob(job) }, 202);
  });
}
