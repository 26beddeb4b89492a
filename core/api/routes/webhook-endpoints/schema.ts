import { z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { eventTypes } from "../../events/outbox.ts";
import { deliveryStates, webhookDeliverySchema } from "../../webhooks/deliveries.ts";
import { endpointHealths, webhookEndpointSchema } from "../../webhooks/endpoints.ts";
import { requireOwnOrganization, requireScope } from "../auth.ts";
import type { AppEnv } from "../context.ts";

/** Wire schemas of the webhook routes (SPEC section 5), from the domain's own schemas. */
const timestamp = { type: "string", format: "date-time", example: "2026-11-26T02:15:00Z" } as const;

export const WebhookEndpoint = webhookEndpointSchema
  .extend({
    event_types: z.array(z.string()).openapi({ description: `Subscribed event types; empty: all of ${eventTypes.join(", ")}.` }),
    // Fresh field schemas (not the domain's): their OpenAPI metadata must not depend on module order (see schemas.ts).
    health: z.enum(endpointHealths).openapi({
      description: "healthy: the last delivery succeeded; failing: deliveries fail since a while; disabled: turned off (by the organization, or after 3 days of failures only).",
    }),
    created_at: z.string().openapi(timestamp),
    updated_at: z.string().openapi(timestamp),
  })
  .openapi("WebhookEndpoint");

export const WebhookDelivery = webhookDeliverySchema
  .extend({
    payload: z.record(z.string(), z.unknown()).openapi({ description: "The event exactly as sent: {id, type, created_at, data}." }),
    state: z.enum(deliveryStates).openapi({ description: "pending (to be sent or retried), delivered (a 2xx answer), failed (after the last attempt)." }),
    next_attempt_at: z.string().nullable().openapi(timestamp),
    created_at: z.string().openapi(timestamp),
    delivered_at: z.string().nullable().openapi(timestamp),
  })
  .openapi("WebhookDelivery");

export const WebhookOrgParams = z.object({
  orgID: z.string().min(1).openapi({ param: { name: "orgID", in: "path" }, description: "Organization id." }),
});
export const WebhookEndpointParams = WebhookOrgParams.extend({
  endpointID: z.string().min(1).openapi({ param: { name: "endpointID", in: "path" }, description: "Webhook endpoint id (whe_...)." }),
});

export const EndpointWithSecret = z.object({
  webhook_endpoint: WebhookEndpoint,
  plaintext_secret: z.string().openapi({ description: "The signing secret (whsec_...): shown in this response only." }),
});
export const DeliveryResponse = z.object({ delivery: WebhookDelivery });

/**
 * The webhook routes' preamble, as one middleware (like projectAccess): the scope, then the
 * caller's own organization (another one's id is a 404), before the request is validated.
 */
export function orgAccess(access: "read" | "write"): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    requireScope(c, access === "read" ? "organizations:read" : "organizations:write");
    requireOwnOrganization(c, c.req.param("orgID") ?? "");
    await next();
  };
}
