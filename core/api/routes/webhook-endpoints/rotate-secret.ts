import { createRoute } from "@hono/zod-openapi";
import { SECRET_OVERLAP_MS, rotateSecret, toEndpoint } from "../../../webhooks/endpoints.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { EndpointWithSecret, WebhookEndpointParams } from "../../../contract/webhook-endpoints.ts";

export const rotateWebhookSecretRoute = createRoute({
  method: "post",
  path: "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}/rotate-secret",
  tags: ["Webhooks"],
  summary: `Rotate the signing secret: the previous one keeps signing beside the new one for ${SECRET_OVERLAP_MS / 3600_000} hours`,
  security,
  middleware: [orgAccess("organizations:write")] as const,
  request: { params: WebhookEndpointParams },
  responses: {
    200: { description: "The endpoint and its new secret (shown this once)", content: { "application/json": { schema: EndpointWithSecret } } },
    ...errorResponses(401, 403, 404, 409),
  },
});

export function registerRotateWebhookSecret(app: App, r: RouteDeps) {
  app.openapi(rotateWebhookSecretRoute, async (c) => {
    const { orgID, endpointID } = c.req.valid("param");
    const { item, secret } = await rotateSecret(r.deps, orgID, endpointID);
    c.var.log.info("webhook secret rotated", { endpoint_id: item.id });
    return c.json({ webhook_endpoint: toEndpoint(item), plaintext_secret: secret }, 200);
  });
}
