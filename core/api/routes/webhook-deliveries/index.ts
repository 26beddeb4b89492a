import type { App, RouteDeps } from "../../context.ts";
import { registerListWebhookDeliveries } from "./list.ts";
import { registerRedeliverWebhook } from "./redeliver.ts";

export function registerWebhookDeliveriesRoutes(app: App, r: RouteDeps): void {
  registerListWebhookDeliveries(app, r);
  registerRedeliverWebhook(app, r);
}
