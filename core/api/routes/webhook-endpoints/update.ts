import { createRoute } from "@hono/zod-openapi";
import { toEndpoint, updateEndpoint } from "../../../webhooks/endpoints.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { UpdateWebhookEndpointRequest, UpdateWebhookEndpointResponse, WebhookEndpointParams } from "../../../contract/webhook-endpoints.ts";

export const updateWebhookEndpointRoute = createRoute({
  method: "patch",
  path: "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}",
  tags: ["Webhooks"],
  summary: "Change a webhook endpoint's URL, event types, description or activity (fields not given keep their values)",
  security,
  middleware: [orgAccess("organizations:write")] as const,
  request: { params: WebhookEndpointParams, body: { required: true, content: { "application/json": { schema: UpdateWebhookEndpointRequest } } } },
  responses: {
    200: { description: "The endpoint", content: { "application/json": { schema: UpdateWebhookEndpointResponse } } },
    ...errorResponses(400, 401, 403, 404, 413, 415),
  },
});

export function registerUpdateWebhookEndpoint(app: App, r: RouteDeps) {
  app.openapi(updateWebhookEndpointRoute, async (c) => {
    const { orgID, endpointID } = c.req.valid("param");
    const item = await updateEndpoint(r.deps, orgID, endpointID, c.req.valid("json"));
    c.var.log.info("webhook endpoint updated", { endpoint_id: item.id });
    return c.json({ webhook_endpoint: toEndpoint(item) }, 200);
  });
}
