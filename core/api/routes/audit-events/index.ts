import type { App, RouteDeps } from "../../context.ts";
import { registerListProjectAuditEvents } from "./list.ts";
import { registerListOrganizationAuditEvents } from "./org-list.ts";

export function registerAuditEventsRoutes(app: App, r: RouteDeps): void {
  registerListProjectAuditEvents(app, r);
  registerListOrganizationAuditEvents(app, r);
}
