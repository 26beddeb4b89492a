import { createRoute } from "@hono/zod-openapi";
import { pitrView } from "../../../wal/view.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { GetPitrResponse } from "../../../contract/pitr.ts";

export const getPitrRoute = createRoute({
  method: "get",
  path: "/v1/projects/{projectID}/pitr",
  tags: ["Point-in-time recovery"],
  summary: "The project's restorable window: earliest and latest restorable time, lag, base backups, gaps",
  security,
  middleware: [projectAccess("backups:read")] as const,
  request: { params: ProjectParams },
  responses: {
    200: { description: "The window", content: { "application/json": { schema: GetPitrResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerGetPitr(app: App, r: RouteDeps) {
  app.openapi(getPitrRoute, async (c) => {
    return c.json({ pitr: await pitrView(r.deps, c.var.project.cluster_id) }, 200);
  });
}
