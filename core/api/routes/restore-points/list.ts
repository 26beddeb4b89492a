import { createRoute } from "@hono/zod-openapi";
import { listRestorePoints, toRestorePoint } from "../../../restores/points.ts";
import { getArchive } from "../../../wal/archive.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security, unpagedQuery } from "../../../contract/shared.ts";
import { ListRestorePointsResponse } from "../../../contract/restore-points.ts";

export const listRestorePointsRoute = createRoute({
  method: "get",
  path: "/v1/projects/{projectID}/restore-points",
  tags: ["Restore points"],
  summary: "List the project's restore points, newest first",
  security,
  middleware: [projectAccess("backups:read")] as const,
  request: { params: ProjectParams, query: unpagedQuery("every restore point of the project") },
  responses: {
    200: { description: "The restore points", content: { "application/json": { schema: ListRestorePointsResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerListRestorePoints(app: App, r: RouteDeps) {
  app.openapi(listRestorePointsRoute, async (c) => {
    const project = c.var.project;
    const points = await listRestorePoints(r.deps, project.id);
    const archive = await getArchive(r.deps, project.cluster_id);
    return c.json({ restore_points: points.map(toRestorePoint), pitr_window_days: archive?.enabled ? archive.window_days : 0 }, 200);
  });
}
