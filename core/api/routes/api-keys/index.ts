import type { App, RouteDeps } from "../../context.ts";
import { registerCreateApiKey } from "./create.ts";
import { registerListApiKeys } from "./list.ts";
import { registerRevokeApiKey } from "./revoke.ts";

export function registerApiKeysRoutes(app: App, r: RouteDeps): void {
  registerCreateApiKey(app, r);
  registerListApiKeys(app, r);
  registerRevokeApiKey(app, r);
}
