import { createRoute, z } from "@hono/zod-openapi";
import { toPreview } from "../../previews/previews.ts";
import { scopeGuard } from "../auth.ts";
import type { App, RouteDeps } from "../context.ts";
import { errorResponses } from "../errors.ts";
import { loadPreview } from "../previews-access.ts";
import { Preview, PreviewParams } from "../restore-schemas.ts";
import { security } from "../schemas.ts";

export const GetPreviewResponse = z.object({ preview: Preview });

export const getPreviewRoute = createRoute({
  method: "get",
  path: "/v1/preview-databases/{previewID}",
  tags: ["Preview databases"],
  summary: "Get a preview database",
  security,
  middleware: [scopeGuard("projects:read")] as const,
  request: { params: PreviewParams },
  responses: {
    200: { description: "The preview", content: { "application/json": { schema: GetPreviewResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerGetPreview(app: App, r: RouteDeps) {
  app.openapi(getPreviewRoute, async (c) => {
        const { preview } = await loadPreview(r, c, c.req.valid("param").previewID);
    return c.json({ preview: toPreview(preview) }, 200);
  });
}
