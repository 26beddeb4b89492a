import { createRoute, z } from "@hono/zod-openapi";
import { endpointPatch, toEndpoint, updateEndpoint } from "../../webhooks/endpoints.ts";
import type { App, RouteDeps } from "../context.ts";
import { errorResponses } from "../errors.ts";
import { security } from "../schemas.ts";
import { WebhookEndpoint, WebhookEndpointParams, orgAccess } from "./webhook-endpoints.ts";

export const UpdateWebhookEndpointRequest = endpointPatch
  .extend({
    event_types: endpointPatch.shape.event_types.meta({ description: "Replaces the list; empty: all event types." }),
    is_active: endpointPatch.shape.is_active.meta({ description: "false stops deliveries; true turns a disabled endpoint back on (its failure streak is forgotten)." }),
  })
  .openapi("UpdateWebhookEndpointRequest");
export const UpdateWebhookEndpointResponse = z.object({ webhook_endpoint: WebhookEndpoint });

export const updateWebhookEndpointRoute = createRoute({
  method: "patch",
  path: "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}",
  tags: ["Webhooks"],
  summary: "Change a webhook endpoint's URL, event types, description or activity (fields not given keep their values)",
  security,
  middleware: [orgAccess("write")] as const,
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
