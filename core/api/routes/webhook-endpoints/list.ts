import { createRoute, z } from "@hono/zod-openapi";
import { listEndpointItems, toEndpoint } from "../../webhooks/endpoints.ts";
import type { App, RouteDeps } from "../context.ts";
import { errorResponses } from "../errors.ts";
import { security } from "../schemas.ts";
import { WebhookEndpoint, WebhookOrgParams, orgAccess } from "./webhook-endpoints.ts";

export const ListWebhookEndpointsResponse = z.object({ webhook_endpoints: z.array(WebhookEndpoint) });

export const listWebhookEndpointsRoute = createRoute({
  method: "get",
  path: "/v1/organizations/{orgID}/webhook-endpoints",
  tags: ["Webhooks"],
  summary: "List the organization's webhook endpoints, newest first (never their secrets)",
  security,
  middleware: [orgAccess("read")] as const,
  request: { params: WebhookOrgParams },
  responses: {
    200: { description: "The endpoints", content: { "application/json": { schema: ListWebhookEndpointsResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerListWebhookEndpoints(app: App, r: RouteDeps) {
  app.openapi(listWebhookEndpointsRoute, async (c) => {
    const { orgID } = c.req.valid("param");
    return c.json({ webhook_endpoints: (await listEndpointItems(r.deps, orgID)).map(toEndpoint) }, 200);
  });
}
