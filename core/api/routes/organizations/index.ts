import type { App, RouteDeps } from "../../context.ts";
import { registerGetOrganization } from "./get.ts";

export function registerOrganizationsRoutes(app: App, r: RouteDeps): void {
  registerGetOrganization(app, r);
}
