import type { App, RouteDeps } from "../../context.ts";
import { registerListRestorePoints } from "./list.ts";
import { registerCreateRestorePoint } from "./create.ts";
import { registerDeleteRestorePoint } from "./delete.ts";

export function registerRestorePointsRoutes(app: App, r: RouteDeps): void {
  registerListRestorePoints(app, r);
  registerCreateRestorePoint(app, r);
  registerDeleteRestorePoint(app, r);
}
