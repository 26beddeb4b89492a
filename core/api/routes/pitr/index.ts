import type { App, RouteDeps } from "../../context.ts";
import { registerGetPitr } from "./get.ts";

export function registerPitrRoutes(app: App, r: RouteDeps): void {
  registerGetPitr(app, r);
}
