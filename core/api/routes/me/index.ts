import type { App, RouteDeps } from "../../context.ts";
import { registerMe } from "./get.ts";

export function registerMeRoutes(app: App, r: RouteDeps): void {
  registerMe(app, r);
}
