import type { App, RouteDeps } from "../../context.ts";
import { registerCreateApproval } from "./create.ts";

export function registerApprovalsRoutes(app: App, r: RouteDeps): void {
  registerCreateApproval(app, r);
}
