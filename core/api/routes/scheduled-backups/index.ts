import type { App, RouteDeps } from "../../context.ts";
import { registerListScheduledBackups } from "./list.ts";
import { registerPutScheduledBackup } from "./put.ts";

export function registerScheduledBackupsRoutes(app: App, r: RouteDeps): void {
  registerListScheduledBackups(app, r);
  registerPutScheduledBackup(app, r);
}
