import { createRoute } from "@hono/zod-openapi";
import { actorOf } from "../../../audit/audit.ts";
import { putSchedule, toScheduledBackup } from "../../../backups/schedules.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { PutScheduledBackupRequest, PutScheduledBackupResponse } from "../../../contract/scheduled-backups.ts";

export const putScheduledBackupRoute = createRoute({
  method: "put",
  path: "/v1/projects/{projectID}/scheduled-backups/default",
  tags: ["Backups"],
  summary: "Replace the project's daily backup schedule (runs once a day at cron_hour:cron_minute UTC)",
  security,
  middleware: [projectAccess("backups:write")] as const,
  request: {
    params: ProjectParams,
    body: { required: true, content: { "application/json": { schema: PutScheduledBackupRequest } } },
  },
  responses: {
    200: { description: "The schedule as stored", content: { "application/json": { schema: PutScheduledBackupResponse } } },
    ...errorResponses(400, 401, 403, 404, 413, 415),
  },
});

export function registerPutScheduledBackup(app: App, r: RouteDeps) {
  app.openapi(putScheduledBackupRoute, async (c) => {
    const project = c.var.project;
    const schedule = await putSchedule(r.deps, project, c.req.valid("json"), actorOf(c.var.principal));
    return c.json({ scheduled_backup: toScheduledBackup(schedule) }, 200);
  });
}
