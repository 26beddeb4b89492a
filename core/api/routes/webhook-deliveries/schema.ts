import { z } from "../../../zod.ts";
import { deliveryStates, webhookDeliverySchema } from "../../../webhooks/deliveries.ts";
import { atOrNull, listQuery, timestamp } from "../shared.ts";

export const WebhookDelivery = webhookDeliverySchema
  .extend({
    payload: z.record(z.string(), z.unknown()).openapi({ description: "The event exactly as sent: {id, type, created_at, data}." }),
    state: z.enum(deliveryStates).openapi({ description: "pending (to be sent or retried), delivered (a 2xx answer), failed (after the last attempt)." }),
    next_attempt_at: atOrNull(),
    created_at: z.string().openapi(timestamp),
    delivered_at: atOrNull(),
  })
  .openapi("WebhookDelivery");

export const DeliveryResponse = z.object({ delivery: WebhookDelivery });

export const ListWebhookDeliveriesQuery = listQuery(100, 25);

export const ListWebhookDeliveriesResponse = z.object({ deliveries: z.array(WebhookDelivery) });
