import type { App, RouteDeps } from "../context.ts";
import { registerCreatePreview } from "./previews.create.ts";
import { registerDeletePreview } from "./previews.delete.ts";
import { registerExtendPreview } from "./previews.extend.ts";
import { registerGetPreview } from "./previews.get.ts";
import { registerListPreviews } from "./previews.list.ts";
import { registerPreviewConnections } from "./previews.connections.ts";
import { registerResetPreview } from "./previews.reset.ts";
import { registerPromotePreview } from "./previews.promote.ts";
import { registerGetProject } from "./projects.get.ts";
import { registerListProjects } from "./projects.list.ts";
import { registerCreateRestorePoint } from "./restore-points.create.ts";
import { registerDeleteRestorePoint } from "./restore-points.delete.ts";
import { registerListRestorePoints } from "./restore-points.list.ts";
import { registerCreateRestore } from "./restores.create.ts";

/** The restore half's routes (issue 13): projects, preview databases, restores, restore points. */
export function registerRestoreRoutes(app: App, r: RouteDeps) {
  registerListProjects(app, r);
  registerGetProject(app, r);
  registerCreatePreview(app, r);
  registerListPreviews(app, r);
  registerGetPreview(app, r);
  registerDeletePreview(app, r);
  registerResetPreview(app, r);
  registerExtendPreview(app, r);
  registerPreviewConnections(app, r);
  registerPromotePreview(app, r);
  registerCreateRestore(app, r);
  registerListRestorePoints(app, r);
  registerCreateRestorePoint(app, r);
  registerDeleteRestorePoint(app, r);
}
