import { createRoute } from "@hono/zod-openapi";
import { listEndpointItems, toEndpoint } from "../../../webhooks/endpoints.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { OrgParams, security, unpagedQuery } from "../../../contract/shared.ts";
import { ListWebhookEndpointsResponse } from "../../../contract/webhook-endpoints.ts";

export const listWebhookEndpointsRoute = createRoute({
  method: "get",
  path: "/v1/organizations/{orgID}/webhook-endpoints",
  tags: ["Webhooks"],
  summary: "List the organization's webhook endpoints, newest first (never their secrets)",
  security,
  middleware: [orgAccess("organizations:read")] as const,
  request: { params: OrgParams, query: unpagedQuery("every endpoint of the organization, at most 20") },
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
