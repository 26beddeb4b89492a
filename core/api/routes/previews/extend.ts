import { createRoute } from "@hono/zod-openapi";
import { auditRequest } from "../../audit-request.ts";
import { extendPreview, previewView } from "../../../previews/previews.ts";
import { previewAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { ExtendPreviewRequest, ExtendPreviewResponse, PreviewParams } from "../../../contract/previews.ts";

export const extendPreviewRoute = createRoute({
  method: "post",
  path: "/v1/preview-databases/{previewID}/extend",
  tags: ["Preview databases"],
  summary: "Keep a preview longer: it now expires ttl_hours from now",
  security,
  middleware: [previewAccess("projects:write")] as const,
  request: { params: PreviewParams, body: { required: true, content: { "application/json": { schema: ExtendPreviewRequest } } } },
  responses: {
    200: { description: "The preview with its new expiry", content: { "application/json": { schema: ExtendPreviewResponse } } },
    ...errorResponses(400, 401, 403, 404, 409, 413, 415),
  },
});

export function registerExtendPreview(app: App, r: RouteDeps) {
  app.openapi(extendPreviewRoute, async (c) => {
    const { preview, project } = c.var;
    const extended = await extendPreview(r.deps, preview, c.req.valid("json").ttl_hours);
    await auditRequest(r, c, {
      project,
      action: "preview.extended",
      target_type: "preview",
      target_id: preview.id,
      metadata: { preview_id: preview.id, expires_at_before: preview.expires_at, expires_at: extended.expires_at },
    });
    return c.json({ preview: await previewView(r.deps, extended) }, 200);
  });
}
