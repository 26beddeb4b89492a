import { createRoute } from "@hono/zod-openapi";
import { auditRequest } from "../../audit-request.ts";
import { AppError } from "../../../errors.ts";
import { createRestorePoint, toRestorePoint } from "../../../restores/points.ts";
import { backupByKey, newestVerifiedBackup } from "../../../restores/restores.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { CreateRestorePointRequest, CreateRestorePointResponse } from "../../../contract/restore-points.ts";
import { createPitrPoint } from "../../../restores/pitr-points.ts";

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
    const p = c.var.principal;
    const actor = { kind: p.auth_source, id: p.key_id ?? p.user_id ?? "unknown" };
    if (body.kind === "pitr") {
      if (body.backup_key) throw new AppError("bad_request", "backup_key is for kind backup; a restore point of kind pitr names a time (pitr_time)");
      const point = await createPitrPoint(r.deps, project, body, actor);
      await auditRequest(r, c, {
        project,
        action: "restore_point.created",
        target_type: "restore_point",
        target_id: point.id,
        metadata: { restore_point_id: point.id, kind: "pitr", pitr_time: point.pitr_time, label: point.label },
      });
      return c.json({ restore_point: toRestorePoint(point) }, 201);
    }
    if (body.pitr_time !== undefined)
      throw new AppError("bad_request", "pitr_time is for kind pitr; a restore point of kind backup pins a backup (backup_key)");
    const backup = body.backup_key ? await backupByKey(r.deps, project, body.backup_key) : await newestVerifiedBackup(r.deps, project);
    const point = await createRestorePoint(r.deps, project, backup, { label: body.label, note: body.note }, actor);
    await auditRequest(r, c, {
      project,
      action: "restore_point.created",
      target_type: "restore_point",
      target_id: point.id,
      metadata: { restore_point_id: point.id, backup_id: backup.id, label: point.label },
    });
    return c.json({ restore_point: toRestorePoint(point) }, 201);
  });
}
