import { createRoute } from "@hono/zod-openapi";
import { createEndpoint, toEndpoint } from "../../../webhooks/endpoints.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { OrgParams, security } from "../../../contract/shared.ts";
import { CreateWebhookEndpointRequest, EndpointWithSecret } from "../../../contract/webhook-endpoints.ts";

export const createWebhookEndpointRoute = createRoute({
  method: "post",
  path: "/v1/organizations/{orgID}/webhook-endpoints",
  tags: ["Webhooks"],
  summary: "Create a webhook endpoint (its signing secret is in this response only)",
  security,
  middleware: [orgAccess("organizations:write")] as const,
  request: { params: OrgParams, body: { required: true, content: { "application/json": { schema: CreateWebhookEndpointRequest } } } },
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
