import { actorOf, recordAudit } from "../../../audit/audit.ts";
import { createRoute } from "@hono/zod-openapi";
import { signDownload } from "../../../downloads/downloads.ts";
import { AppError } from "../../../errors.ts";
import { exportArtifact, getExport } from "../../../exports/exports.ts";
import { isId } from "../../../ids.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { DownloadResponse } from "../../../contract/backups.ts";
import { security } from "../../../contract/shared.ts";
import { ExportParams } from "../../../contract/exports.ts";

export const downloadExportRoute = createRoute({
  method: "get",
  path: "/v1/projects/{projectID}/exports/{exportID}/download",
  tags: ["Exports"],
  summary: "A signed URL (15 minutes) to download a completed export's pg_dump archive",
  security,
  middleware: [projectAccess("backups:read")] as const,
  request: { params: ExportParams },
  responses: {
    200: { description: "Where to download it, and the size and SHA-256 to check", content: { "application/json": { schema: DownloadResponse } } },
    ...errorResponses(401, 403, 404, 409, 503),
  },
});

export function registerDownloadExport(app: App, r: RouteDeps) {
  app.openapi(downloadExportRoute, async (c) => {
    const { exportID } = c.req.valid("param");
    const project = c.var.project;
    const exp = isId("export", exportID) ? await getExport(r.deps, project.id, exportID) : undefined;
    if (!exp) throw new AppError("not_found", `export ${exportID} not found`);
    const download = await signDownload(r.deps, exportArtifact(exp, r.deps.now()));
    // Who took a copy of the data out, and when: recorded before the URL is handed out.
    await recordAudit(r.deps, {
      organization_id: project.organization_id,
      project_id: project.id,
      action: "export.download_url_issued",
      actor: actorOf(c.var.principal),
      target_type: "export",
      target_id: exp.id,
      metadata: { export_id: exp.id, expires_at: download.expires_at, size_bytes: download.size_bytes },
    });
    // The URL is a bearer credential for 15 minutes: never logged.
    c.var.log.info("export download signed", { project_id: project.id, export_id: exp.id, expires_at: download.expires_at });
    return c.json({ download }, 200);
  });
}
