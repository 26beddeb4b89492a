import { createRoute } from "@hono/zod-openapi";
import { AppError } from "../../../errors.ts";
import { getCluster } from "../../../orgs/orgs.ts";
import { previewUrl } from "../../../previews/database.ts";
import { previewPassword } from "../../../previews/previews.ts";
import { previewAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { PreviewConnectionsResponse, PreviewParams } from "../../../contract/previews.ts";

export const previewConnectionsRoute = createRoute({
  method: "get",
  path: "/v1/preview-databases/{previewID}/connections",
  tags: ["Preview databases"],
  summary: "How to connect to a preview: its role's URL (the only place its password is shown)",
  security,
  middleware: [previewAccess("credentials:read")] as const,
  request: { params: PreviewParams },
  responses: {
    200: { description: "The connection details", content: { "application/json": { schema: PreviewConnectionsResponse } } },
    ...errorResponses(401, 403, 404, 409),
  },
});

export function registerPreviewConnections(app: App, r: RouteDeps) {
  app.openapi(previewConnectionsRoute, async (c) => {
    const { preview } = c.var;
    if (preview.state === "deleting" || preview.state === "deleted")
      throw new AppError("conflict", `preview ${preview.id} is ${preview.state}: it has no connections`);
    const cluster = await getCluster(r.deps, preview.cluster_id);
    if (!cluster) throw new AppError("not_found", `preview ${preview.id} not found`);
    c.header("cache-control", "no-store");
    return c.json(
      {
        connections: {
          direct_url: previewUrl(cluster, preview.role_name, previewPassword(r.deps, preview), preview.database_name),
          pooled_url: null,
          username: preview.role_name,
        },
      },
      200,
    );
  });
}
