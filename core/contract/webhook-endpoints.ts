import { z } from "../zod.ts";
import { eventTypes, eventTypeSchema } from "./events.ts";
import { OrgParams, timestamp } from "./shared.ts";

export const endpointHealths = ["healthy", "failing", "disabled"] as const;

/** The Endpoint as the API shows it (SPEC section 5): exactly these fields. */
export const webhookEndpointSchema = z.object({
  id: z.string(),
  organization_id: z.string(),
  url: z.string(),
  description: z.string(),
  event_types: z.array(z.string()),
  is_active: z.boolean(),
  health: z.enum(endpointHealths),
  created_at: z.string(),
  updated_at: z.string(),
});
export const endpointInput = z.object({
  url: z.string().min(1).max(2048),
  description: z.string().max(500).optional(),
  event_types: z.array(eventTypeSchema).max(eventTypeSchema.options.length).optional(),
});
export const endpointPatch = z.object({
  url: z.string().min(1).max(2048).optional(),
  description: z.string().max(500).optional(),
  event_types: z.array(eventTypeSchema).max(eventTypeSchema.options.length).optional(),
  is_active: z.boolean().optional(),
});

/** Wire schemas of the webhook routes (SPEC section 5), from the domain's own schemas. */
export const WebhookEndpoint = webhookEndpointSchema
  .extend({
    event_types: z.array(z.string()).openapi({ description: `Subscribed event types; empty: all of ${eventTypes.join(", ")}.` }),
    health: z.enum(endpointHealths).openapi({
      description:
        "healthy: the last delivery succeeded; failing: deliveries fail since a while; disabled: turned off (by the organization, or after 3 days of failures only).",
    }),
    created_at: z.string().openapi(timestamp),
    updated_at: z.string().openapi(timestamp),
  })
  .openapi("WebhookEndpoint");

export const WebhookEndpointParams = OrgParams.extend({
  endpointID: z
    .string()
    .min(1)
    .openapi({ param: { name: "endpointID", in: "path" }, description: "Webhook endpoint id (whe_...)." }),
});

export const EndpointWithSecret = z.object({
  webhook_endpoint: WebhookEndpoint,
  plaintext_secret: z.string().openapi({ description: "The signing secret (whsec_...): shown in this response only." }),
});

export const CreateWebhookEndpointRequest = endpointInput
  .extend({
    url: endpointInput.shape.url.meta({ description: "https URL of a public receiver (private, loopback and metadata addresses are refused)." }),
    event_types: endpointInput.shape.event_types.meta({ description: "Event types to receive; empty or absent: all." }),
  })
  .openapi("CreateWebhookEndpointRequest");

export const DeleteWebhookEndpointResponse = z.object({ webhook_endpoint: WebhookEndpoint });

export const GetWebhookEndpointResponse = z.object({ webhook_endpoint: WebhookEndpoint });

export const ListWebhookEndpointsResponse = z.object({ webhook_endpoints: z.array(WebhookEndpoint) });

export const UpdateWebhookEndpointRequest = endpointPatch
  .extend({
    event_types: endpointPatch.shape.event_types.meta({ description: "Replaces the list; empty: all event types." }),
    is_active: endpointPatch.shape.is_active.meta({
      description: "false stops deliveries; true turns a disabled endpoint back on (its failure streak is forgotten).",
    }),
  })
  .openapi("UpdateWebhookEndpointRequest");

export const UpdateWebhookEndpointResponse = z.object({ webhook_endpoint: WebhookEndpoint });
