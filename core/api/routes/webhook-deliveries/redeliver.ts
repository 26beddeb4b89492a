import { createRoute } from "@hono/zod-openapi";
import { z } from "../../../zod.ts";
import { AppError } from "../../../errors.ts";
import { createDelivery, getDelivery, toDelivery } from "../../../webhooks/deliveries.ts";
import { requireEndpoint } from "../../../webhooks/endpoints.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { WebhookEndpointParams } from "../../../contract/webhook-endpoints.ts";
import { DeliveryResponse } from "../../../contract/webhook-deliveries.ts";

export const redeliverWebhookRoute = createRoute({
  method: "post",
  path: "/v1/organizations/{orgID}/webhook-endpoints/{endpointID}/deliveries/{deliveryID}/redeliver",
  tags: ["Webhooks"],
  summary: "Send a delivery's event again, as a new delivery (new X-CapyDB-Delivery, same event id and body)",
  security,
  middleware: [orgAccess("organizations:write")] as const,
  request: {
    params: WebhookEndpointParams.extend({
      deliveryID: z
        .string()
        .min(1)
        .openapi({ param: { name: "deliveryID", in: "path" }, description: "Delivery id (whd_...)." }),
    }),
  },
  responses: {
    202: { description: "The new pending delivery", content: { "application/json": { schema: DeliveryResponse } } },
    ...errorResponses(401, 403, 404, 409),
  },
});

export function registerRedeliverWebhook(app: App, r: RouteDeps) {
  app.openapi(redeliverWebhookRoute, async (c) => {
    const { orgID, endpointID, deliveryID } = c.req.valid("param");
    const endpoint = await requireEndpoint(r.deps, orgID, endpointID);
    const original = await getDelivery(r.deps, endpoint.id, deliveryID);
    if (!original || original.organization_id !== orgID) throw new AppError("not_found", `delivery ${deliveryID} not found`);
    if (!endpoint.is_active) throw new AppError("conflict", `webhook endpoint ${endpoint.id} is disabled: turn it back on (PATCH is_active: true) first`);
    const delivery = await createDelivery(r.deps, endpoint, { id: original.event_id, type: original.event_type, body: original.body });
    c.var.log.info("webhook redelivery requested", { endpoint_id: endpoint.id, delivery_id: delivery.id, original_delivery_id: original.id });
    return c.json({ delivery: toDelivery(delivery) }, 202);
  });
}
