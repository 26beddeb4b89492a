import type { App, RouteDeps } from "../context.ts";
import { registerRedeliverWebhook } from "./webhook-deliveries.redeliver.ts";
import { registerListWebhookDeliveries } from "./webhook-deliveries.list.ts";
import { registerCreateWebhookEndpoint } from "./webhook-endpoints.create.ts";
import { registerDeleteWebhookEndpoint } from "./webhook-endpoints.delete.ts";
import { registerGetWebhookEndpoint } from "./webhook-endpoints.get.ts";
import { registerListWebhookEndpoints } from "./webhook-endpoints.list.ts";
import { registerRotateWebhookSecret } from "./webhook-endpoints.rotate-secret.ts";
import { registerTestWebhookEndpoint } from "./webhook-endpoints.send-test.ts";
import { registerUpdateWebhookEndpoint } from "./webhook-endpoints.update.ts";

/** The organization's webhook endpoints and their deliveries (SPEC section 5), one route per file. */
export function registerWebhookRoutes(app: App, r: RouteDeps): void {
  registerListWebhookEndpoints(app, r);
  registerCreateWebhookEndpoint(app, r);
  registerGetWebhookEndpoint(app, r);
  registerUpdateWebhookEndpoint(app, r);
  registerDeleteWebhookEndpoint(app, r);
  registerRotateWebhookSecret(app, r);
  registerTestWebhookEndpoint(app, r);
  registerListWebhookDeliveries(app, r);
  registerRedeliverWebhook(app, r);
}
