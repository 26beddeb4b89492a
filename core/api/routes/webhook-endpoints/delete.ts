import { createRoute } from "@hono/zod-openapi";
import { deleteEndpoint, toEndpoint } from "../../../webhooks/endpoints.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { DeleteWebhookEndpointResponse, WebhookEndpointParams } from "../../../contract/webhook-endpoints.ts";

export const deleteWebhookEndpointRoute = createRoute({
  method: "delete",
  path: "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}",
  tags: ["Webhooks"],
  summary: "Delete a webhook endpoint (its pending deliveries fail; its history goes with it)",
  security,
  middleware: [orgAccess("organizations:write")] as const,
  request: { params: WebhookEndpointParams },
  responses: {
    200: { description: "The deleted endpoint", content: { "application/json": { schema: DeleteWebhookEndpointResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerDeleteWebhookEndpoint(app: App, r: RouteDeps) {
  app.openapi(deleteWebhookEndpointRoute, async (c) => {
    const { orgID, endpointID } = c.req.valid("param");
    const item = await deleteEndpoint(r.deps, orgID, endpointID);
    c.var.log.info("webhook endpoint deleted", { endpoint_id: item.id });
    return c.json({ webhook_endpoint: toEndpoint(item) }, 200);
  });
}
