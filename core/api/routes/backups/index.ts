import type { App, RouteDeps } from "../../context.ts";
import { registerListBackups } from "./list.ts";
import { registerCreateBackup } from "./create.ts";
import { registerDownloadBackup } from "./download.ts";

export function registerBackupsRoutes(app: App, r: RouteDeps): void {
  registerListBackups(app, r);
  registerCreateBackup(app, r);
  registerDownloadBackup(app, r);
}
