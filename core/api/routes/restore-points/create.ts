import { createRoute } from "@hono/zod-openapi";
import { auditRequest } from "../../audit-request.ts";
import { AppError } from "../../../errors.ts";
import { createRestorePoint, toRestorePoint } from "../../../restores/points.ts";
import { PITR_UNAVAILABLE, backupByKey, newestVerifiedBackup } from "../../../restores/restores.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../shared.ts";
import { CreateRestorePointRequest, CreateRestorePointResponse } from "./schema.ts";

export const createRestorePointRoute = createRoute({
  method: "post",
  path: "/v1/projects/{projectID}/restore-points",
  tags: ["Restore points"],
  summary: "Pin a completed backup past its retention with a labelled restore point",
  security,
  middleware: [projectAccess("backups:write")] as const,
  request: { params: ProjectParams, body: { required: true, content: { "application/json": { schema: CreateRestorePointRequest } } } },
  responses: {
    201: { description: "The restore point", content: { "application/json": { schema: CreateRestorePointResponse } } },
    ...errorResponses(400, 401, 403, 404, 409, 413, 415, 503),
  },
});

export function registerCreateRestorePoint(app: App, r: RouteDeps) {
  app.openapi(createRestorePointRoute, async (c) => {
        const project = c.var.project;
    const body = c.req.valid("json");
    if (body.kind === "pitr") throw new AppError("bad_request", PITR_UNAVAILABLE);
    const backup = body.backup_key ? await backupByKey(r.deps, project, body.backup_key) : await newestVerifiedBackup(r.deps, project);
    const p = c.var.principal;
    const actor = { kind: p.auth_source, id: p.key_id ?? p.user_id ?? "unknown" };
    const point = await createRestorePoint(r.deps, project, backup, { label: body.label, note: body.note }, actor);
    await auditRequest(r, c, { project, action: "restore_point.created", target_type: "restore_point", target_id: point.id, metadata: { restore_point_id: point.id, backup_id: backup.id, label: point.label } });
    return c.json({ restore_point: toRestorePoint(point) }, 201);
  });
}
