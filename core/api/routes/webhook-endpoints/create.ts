import { createRoute, z } from "@hono/zod-openapi";
import { createEndpoint, endpointInput, toEndpoint } from "../../webhooks/endpoints.ts";
import type { App, RouteDeps } from "../context.ts";
import { errorResponses } from "../errors.ts";
import { security } from "../schemas.ts";
import { EndpointWithSecret, WebhookOrgParams, orgAccess } from "./webhook-endpoints.ts";

export const CreateWebhookEndpointRequest = endpointInput
  .extend({
    url: endpointInput.shape.url.meta({ description: "https URL of a public receiver (private, loopback and metadata addresses are refused)." }),
    event_types: endpointInput.shape.event_types.meta({ description: "Event types to receive; empty or absent: all." }),
  })
  .openapi("CreateWebhookEndpointRequest");

export const createWebhookEndpointRoute = createRoute({
  method: "post",
  path: "/v1/organizations/{orgID}/webhook-endpoints",
  tags: ["Webhooks"],
  summary: "Create a webhook endpoint (its signing secret is in this response only)",
  security,
  middleware: [orgAccess("write")] as const,
  request: { params: WebhookOrgParams, body: { required: true, content: { "application/json": { schema: CreateWebhookEndpointRequest } } } },
  responses: {
    201: { description: "The endpoint and its secret", content: { "application/json": { schema: EndpointWithSecret } } },
    ...errorResponses(400, 401, 403, 404, 409, 413, 415),
  },
});

export function registerCreateWebhookEndpoint(app: App, r: RouteDeps) {
  app.openapi(createWebhookEndpointRoute, async (c) => {
    const { orgID } = c.req.valid("param");
    const { item, secret } = await createEndpoint(r.deps, orgID, c.req.valid("json"));
    c.var.log.info("webhook endpoint created", { endpoint_id: item.id });
    return c.json({ webhook_endpoint: toEndpoint(item), plaintext_secret: secret }, 201);
  });
}
