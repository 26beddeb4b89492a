import type { App, RouteDeps } from "../context.ts";
import { registerScheduledBackupsRoutes } from "./scheduled-backups/index.ts";
import { registerBackupsRoutes } from "./backups/index.ts";
import { registerExportsRoutes } from "./exports/index.ts";
import { registerJobsRoutes } from "./jobs/index.ts";
import { registerApiKeysRoutes } from "./api-keys/index.ts";
import { registerMeRoutes } from "./me/index.ts";
import { registerOrganizationsRoutes } from "./organizations/index.ts";
import { registerCliLoginRoutes } from "./cli-login/index.ts";
import { registerProjectsRoutes } from "./projects/index.ts";
import { registerPreviewsRoutes } from "./previews/index.ts";
import { registerRestoresRoutes } from "./restores/index.ts";
import { registerRestorePointsRoutes } from "./restore-points/index.ts";
import { registerApprovalsRoutes } from "./approvals/index.ts";
import { registerAuditEventsRoutes } from "./audit-events/index.ts";
import { registerWebhookEndpointsRoutes } from "./webhook-endpoints/index.ts";
import { registerWebhookDeliveriesRoutes } from "./webhook-deliveries/index.ts";
import { registerPitrRoutes } from "./pitr/index.ts";

/**
 * Every route of the API, one folder per resource (its routes, its `schema.ts`, an `index.ts` that
 * registers them). Each route declares its access middleware (`../auth.ts`); one that does not is
 * refused, whatever the caller (see `guardV1`).
 */
export function registerRoutes(app: App, r: RouteDeps): void {
  registerScheduledBackupsRoutes(app, r);
  registerBackupsRoutes(app, r);
  registerExportsRoutes(app, r);
  registerJobsRoutes(app, r);
  registerApiKeysRoutes(app, r);
  registerMeRoutes(app, r);
  registerOrganizationsRoutes(app, r);
  registerCliLoginRoutes(app, r);
  registerProjectsRoutes(app, r);
  registerPreviewsRoutes(app, r);
  registerRestoresRoutes(app, r);
  registerRestorePointsRoutes(app, r);
  registerApprovalsRoutes(app, r);
  registerAuditEventsRoutes(app, r);
  registerWebhookEndpointsRoutes(app, r);
  registerWebhookDeliveriesRoutes(app, r);
  registerPitrRoutes(app, r);
}
