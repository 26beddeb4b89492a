import { createRoute } from "@hono/zod-openapi";
import { previewView } from "../../../previews/previews.ts";
import { previewAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { GetPreviewResponse, PreviewParams } from "../../../contract/previews.ts";

export const getPreviewRoute = createRoute({
  method: "get",
  path: "/v1/preview-databases/{previewID}",
  tags: ["Preview databases"],
  summary: "Get a preview database",
  security,
  middleware: [previewAccess("projects:read")] as const,
  request: { params: PreviewParams },
  responses: {
    200: { description: "The preview", content: { "application/json": { schema: GetPreviewResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerGetPreview(app: App, r: RouteDeps) {
  app.openapi(getPreviewRoute, async (c) => {
    const { preview } = c.var;
    return c.json({ preview: await previewView(r.deps, preview) }, 200);
  });
}
