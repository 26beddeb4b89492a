import { z } from "../zod.ts";
import { atOrNull, listQuery, timestamp } from "./shared.ts";

export const deliveryStates = ["pending", "delivered", "failed"] as const;

/** The Delivery as the API shows it (SPEC section 5): exactly these fields. */
export const webhookDeliverySchema = z.object({
  id: z.string(),
  organization_id: z.string(),
  endpoint_id: z.string(),
  event_type: z.string(),
  payload: z.record(z.string(), z.unknown()),
  state: z.enum(deliveryStates),
  attempts: z.number().int(),
  max_attempts: z.number().int(),
  next_attempt_at: z.string().nullable(),
  response_status: z.number().int().nullable(),
  last_error: z.string().nullable(),
  created_at: z.string(),
  delivered_at: z.string().nullable(),
  /** When the delivery last changed (an attempt began or ended, or it was rescheduled). */
  updated_at: z.string(),
});
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
