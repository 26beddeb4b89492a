import type { App, RouteDeps } from "../../context.ts";
import { registerListJobs } from "./list.ts";
import { registerGetJob } from "./get.ts";

export function registerJobsRoutes(app: App, r: RouteDeps): void {
  registerListJobs(app, r);
  registerGetJob(app, r);
}
