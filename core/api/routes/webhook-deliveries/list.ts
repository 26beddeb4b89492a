import { createRoute } from "@hono/zod-openapi";
import { listDeliveries, toDelivery } from "../../../webhooks/deliveries.ts";
import { requireEndpoint } from "../../../webhooks/endpoints.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { WebhookEndpointParams } from "../../../contract/webhook-endpoints.ts";
import { ListWebhookDeliveriesQuery, ListWebhookDeliveriesResponse } from "../../../contract/webhook-deliveries.ts";

export const listWebhookDeliveriesRoute = createRoute({
  method: "get",
  path: "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}/deliveries",
  tags: ["Webhooks"],
  summary: "The endpoint's deliveries, newest first",
  security,
  middleware: [orgAccess("organizations:read")] as const,
  request: { params: WebhookEndpointParams, query: ListWebhookDeliveriesQuery },
  responses: {
    200: {
      description: "The deliveries; `x-next-cursor` is set when more remain",
      headers: { "x-next-cursor": { schema: { type: "string" }, description: "Cursor of the next page" } },
      content: { "application/json": { schema: ListWebhookDeliveriesResponse } },
    },
    ...errorResponses(400, 401, 403, 404),
  },
});

export function registerListWebhookDeliveries(app: App, r: RouteDeps) {
  app.openapi(listWebhookDeliveriesRoute, async (c) => {
    const { orgID, endpointID } = c.req.valid("param");
    const endpoint = await requireEndpoint(r.deps, orgID, endpointID);
    const { limit, cursor } = c.req.valid("query");
    const page = await listDeliveries(r.deps, endpoint.id, limit, cursor);
    if (page.cursor) c.header("x-next-cursor", page.cursor);
    return c.json({ deliveries: page.items.map(toDelivery) }, 200);
  });
}
