import type { App, RouteDeps } from "../../context.ts";
import { registerCreateRestore } from "./create.ts";

export function registerRestoresRoutes(app: App, r: RouteDeps): void {
  registerCreateRestore(app, r);
}
