import { createRoute } from "@hono/zod-openapi";
import { actorOf } from "../../../audit/audit.ts";
import { toJob } from "../../../jobs/jobs.ts";
import { requestPromote } from "../../../promote/promote.ts";
import { previewAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { PreviewParams, PromotePreviewRequest, PromotePreviewResponse } from "../../../contract/previews.ts";

export const promotePreviewRoute = createRoute({
  method: "post",
  path: "/v1/preview-databases/{previewID}/promote",
  tags: ["Preview databases"],
  summary: "Promote a preview: its data becomes the project's database (an admin's approval required)",
  description:
    "Starts a `project.promote_preview` job: a backup of the project's current database, verified; then one short swap (new connections refused, " +
    "sessions ended, both databases renamed, connections allowed again). The project's database then holds the preview's data, owned by the " +
    "project's role; the replaced data is kept as a new preview `pre-promote-<date>` for 24 hours (promote it to undo). The job's `last_stdout` shows the phases.",
  security,
  middleware: [previewAccess("projects:write")] as const,
  request: { params: PreviewParams, body: { required: true, content: { "application/json": { schema: PromotePreviewRequest } } } },
  responses: {
    202: { description: "The promote job (project.promote_preview)", content: { "application/json": { schema: PromotePreviewResponse } } },
    ...errorResponses(400, 401, 403, 404, 409, 413, 415, 503),
  },
});

export function registerPromotePreview(app: App, r: RouteDeps) {
  app.openapi(promotePreviewRoute, async (c) => {
    const { preview, project } = c.var;
    const { approval_token } = c.req.valid("json");
    const { job, promotion } = await requestPromote(r.deps, project, preview, approval_token || undefined, actorOf(c.var.principal));
    c.var.log.info("promote requested", { project_id: project.id, preview_id: preview.id, job_id: job.id, backup_id: promotion.safety_backup_id });
    return c.json({ job: toJob(job) }, 202);
  });
}
