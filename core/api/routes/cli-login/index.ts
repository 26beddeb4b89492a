import type { App, RouteDeps } from "../../context.ts";
import { registerCreateCliLogin } from "./create.ts";
import { registerDecideCliLogin } from "./decide.ts";
import { registerPollCliLogin } from "./poll.ts";

export function registerCliLoginRoutes(app: App, r: RouteDeps): void {
  registerCreateCliLogin(app, r);
  registerPollCliLogin(app, r);
  registerDecideCliLogin(app, r);
}
