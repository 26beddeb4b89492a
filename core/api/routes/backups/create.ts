import { createRoute } from "@hono/zod-openapi";
import { z } from "../../../zod.ts";
import { actorOf } from "../../../audit/audit.ts";
import { requestBackup } from "../../../backups/backups.ts";
import { AppError } from "../../../errors.ts";
import { toJob } from "../../../jobs/jobs.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { CreateBackupRequest, CreateBackupResponse } from "../../../contract/backups.ts";

export const createBackupRoute = createRoute({
  method: "post",
  path: "/v1/projects/{projectID}/backups",
  tags: ["Backups"],
  summary: "Take an on-demand backup; answers the job that makes it",
  security,
  middleware: [projectAccess("backups:write")] as const,
  request: {
    params: ProjectParams,
    headers: z.object({
      "idempotency-key": z
        .string()
        .min(1)
        .max(255)
        .regex(/^[\x21-\x7e]+$/, "must be 1-255 printable ASCII characters")
        .optional()
        .openapi({ description: "Same key and body within 24 hours answers the original job and creates nothing." }),
    }),
    body: { required: false, content: { "application/json": { schema: CreateBackupRequest } } },
  },
  responses: {
    202: { description: "The backup job was accepted", content: { "application/json": { schema: CreateBackupResponse } } },
    ...errorResponses(400, 401, 403, 404, 409, 413, 415, 503),
  },
});

export function registerCreateBackup(app: App, r: RouteDeps) {
  app.openapi(createBackupRoute, async (c) => {
    const project = c.var.project;
    const body = (c.req.valid("json") as z.infer<typeof CreateBackupRequest> | undefined) ?? {};
    const idempotencyKey = c.req.valid("header")["idempotency-key"];
    const { job, created } = await requestBackup(r.deps, project, body, { idempotencyKey, actor: actorOf(c.var.principal) });
    if (!job) throw new AppError("internal", "the job was not recorded");
    c.var.log.info(created ? "backup requested" : "backup request replayed", {
      project_id: project.id,
      job_id: job.id,
      backup_id: job.backup_id,
      state: job.state,
    });
    return c.json({ job: toJob(job) }, 202);
  });
}
