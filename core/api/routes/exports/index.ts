import type { App, RouteDeps } from "../../context.ts";
import { registerCreateExport } from "./create.ts";
import { registerListExports } from "./list.ts";
import { registerDownloadExport } from "./download.ts";

export function registerExportsRoutes(app: App, r: RouteDeps): void {
  registerCreateExport(app, r);
  registerListExports(app, r);
  registerDownloadExport(app, r);
}
