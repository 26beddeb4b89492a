import { createRoute } from "@hono/zod-openapi";
import { z } from "../../../zod.ts";
import { actorOf, recordAudit } from "../../../audit/audit.ts";
import { getBackup } from "../../../backups/backups.ts";
import { backupArtifact, signDownload } from "../../../downloads/downloads.ts";
import { AppError } from "../../../errors.ts";
import { isId } from "../../../ids.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { DownloadResponse } from "../../../contract/backups.ts";

export const downloadBackupRoute = createRoute({
  method: "get",
  path: "/v1/projects/{projectID}/backups/{backupID}/download",
  tags: ["Backups"],
  summary: "A signed URL (15 minutes) to download a completed backup's pg_dump archive",
  security,
  middleware: [projectAccess("backups:read")] as const,
  request: {
    params: ProjectParams.extend({
      backupID: z
        .string()
        .min(1)
        .openapi({ param: { name: "backupID", in: "path" }, description: "Backup id." }),
    }),
  },
  responses: {
    200: { description: "Where to download it, and the size and SHA-256 to check", content: { "application/json": { schema: DownloadResponse } } },
    ...errorResponses(401, 403, 404, 409, 503),
  },
});

export function registerDownloadBackup(app: App, r: RouteDeps) {
  app.openapi(downloadBackupRoute, async (c) => {
    const { backupID } = c.req.valid("param");
    const project = c.var.project;
    const backup = isId("backup", backupID) ? await getBackup(r.deps, project.id, backupID) : undefined;
    if (!backup) throw new AppError("not_found", `backup ${backupID} not found`);
    const download = await signDownload(r.deps, backupArtifact(backup));
    // Who took a copy of the data out, and when: recorded before the URL is handed out.
    await recordAudit(r.deps, {
      organization_id: project.organization_id,
      project_id: project.id,
      action: "backup.download_url_issued",
      actor: actorOf(c.var.principal),
      target_type: "backup",
      target_id: backup.id,
      metadata: { backup_id: backup.id, expires_at: download.expires_at, size_bytes: download.size_bytes, sha256: download.sha256 },
    });
    // The URL is a bearer credential for 15 minutes: never logged.
    c.var.log.info("backup download signed", { project_id: project.id, backup_id: backup.id, expires_at: download.expires_at });
    return c.json({ download }, 200);
  });
}
