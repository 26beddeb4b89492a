import type { App, RouteDeps } from "../context.ts";
import { registerGetProject } from "./projects.get.ts";
import { registerListProjects } from "./projects.list.ts";

/** The restore half's routes (issue 13): projects, preview databases, restores, restore points. */
export function registerRestoreRoutes(app: App, r: RouteDeps) {
  registerListProjects(app, r);
  registerGetProject(app, r);
}
