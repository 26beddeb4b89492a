import { createRoute } from "@hono/zod-openapi";
import { requireEndpoint, toEndpoint } from "../../../webhooks/endpoints.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { GetWebhookEndpointResponse, WebhookEndpointParams } from "../../../contract/webhook-endpoints.ts";

export const getWebhookEndpointRoute = createRoute({
  method: "get",
  path: "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}",
  tags: ["Webhooks"],
  summary: "Show a webhook endpoint and its health",
  security,
  middleware: [orgAccess("organizations:read")] as const,
  request: { params: WebhookEndpointParams },
  responses: {
    200: { description: "The endpoint", content: { "application/json": { schema: GetWebhookEndpointResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerGetWebhookEndpoint(app: App, r: RouteDeps) {
  app.openapi(getWebhookEndpointRoute, async (c) => {
    const { orgID, endpointID } = c.req.valid("param");
    return c.json({ webhook_endpoint: toEndpoint(await requireEndpoint(r.deps, orgID, endpointID)) }, 200);
  });
}
