import type { App, RouteDeps } from "../../context.ts";
import { registerListWebhookEndpoints } from "./list.ts";
import { registerCreateWebhookEndpoint } from "./create.ts";
import { registerGetWebhookEndpoint } from "./get.ts";
import { registerUpdateWebhookEndpoint } from "./update.ts";
import { registerDeleteWebhookEndpoint } from "./delete.ts";
import { registerRotateWebhookSecret } from "./rotate-secret.ts";
import { registerTestWebhookEndpoint } from "./send-test.ts";

export function registerWebhookEndpointsRoutes(app: App, r: RouteDeps): void {
  registerListWebhookEndpoints(app, r);
  registerCreateWebhookEndpoint(app, r);
  registerGetWebhookEndpoint(app, r);
  registerUpdateWebhookEndpoint(app, r);
  registerDeleteWebhookEndpoint(app, r);
  registerRotateWebhookSecret(app, r);
  registerTestWebhookEndpoint(app, r);
}
