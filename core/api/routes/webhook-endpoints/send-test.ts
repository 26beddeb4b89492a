import { createRoute } from "@hono/zod-openapi";
import { createDelivery, testEvent, toDelivery } from "../../../webhooks/deliveries.ts";
import { requireEndpoint } from "../../../webhooks/endpoints.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { DeliveryResponse } from "../../../contract/webhook-deliveries.ts";
import { WebhookEndpointParams } from "../../../contract/webhook-endpoints.ts";

export const testWebhookEndpointRoute = createRoute({
  method: "post",
  path: "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}/test",
  tags: ["Webhooks"],
  summary: "Send a `webhook.test` event to the endpoint (asynchronously: follow the delivery in its history)",
  security,
  middleware: [orgAccess("organizations:write")] as const,
  request: { params: WebhookEndpointParams },
  responses: {
    202: { description: "The pending delivery", content: { "application/json": { schema: DeliveryResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerTestWebhookEndpoint(app: App, r: RouteDeps) {
  app.openapi(testWebhookEndpointRoute, async (c) => {
    const { orgID, endpointID } = c.req.valid("param");
    const endpoint = await requireEndpoint(r.deps, orgID, endpointID);
    const delivery = await createDelivery(r.deps, endpoint, testEvent(endpoint, r.deps.now()));
    return c.json({ delivery: toDelivery(delivery) }, 202);
  });
}
