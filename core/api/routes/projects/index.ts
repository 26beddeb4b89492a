import type { App, RouteDeps } from "../../context.ts";
import { registerListProjects } from "./list.ts";
import { registerGetProject } from "./get.ts";

export function registerProjectsRoutes(app: App, r: RouteDeps): void {
  registerListProjects(app, r);
  registerGetProject(app, r);
}
