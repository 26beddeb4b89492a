import { createRoute } from "@hono/zod-openapi";
import { z } from "../../../zod.ts";
import { auditRequest } from "../../audit-request.ts";
import { AppError } from "../../../errors.ts";
import { deleteRestorePoint, getRestorePoint, toRestorePoint } from "../../../restores/points.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { DeleteRestorePointResponse } from "../../../contract/restore-points.ts";

export const deleteRestorePointRoute = createRoute({
  method: "delete",
  path: "/v1/projects/{projectID}/restore-points/{restorePointID}",
  tags: ["Restore points"],
  summary: "Delete a restore point: its backup goes back to normal retention",
  security,
  middleware: [projectAccess("backups:write")] as const,
  request: {
    params: ProjectParams.extend({
      restorePointID: z
        .string()
        .min(1)
        .openapi({ param: { name: "restorePointID", in: "path" }, description: "Restore point id." }),
    }),
  },
  responses: {
    200: { description: "The deleted restore point", content: { "application/json": { schema: DeleteRestorePointResponse } } },
    ...errorResponses(401, 403, 404, 409, 503),
  },
});

export function registerDeleteRestorePoint(app: App, r: RouteDeps) {
  app.openapi(deleteRestorePointRoute, async (c) => {
    const { restorePointID } = c.req.valid("param");
    const project = c.var.project;
    const point = await getRestorePoint(r.deps, project.id, restorePointID);
    if (!point) throw new AppError("not_found", `restore point ${restorePointID} not found in project ${project.id}`);
    const deleted = await deleteRestorePoint(r.deps, point);
    await auditRequest(r, c, {
      project,
      action: "restore_point.deleted",
      target_type: "restore_point",
      target_id: point.id,
      metadata: { restore_point_id: point.id, backup_id: point.backup_id, label: point.label },
    });
    return c.json({ restore_point: toRestorePoint(deleted) }, 200);
  });
}
