import type { Context } from "hono";
import { AppError } from "../errors.ts";
import { getProject, type Project } from "../orgs/orgs.ts";
import { getPreview, type PreviewItem } from "../previews/previews.ts";
import type { AppEnv, RouteDeps } from "./context.ts";

/**
 * Loads a preview the caller may act on, with its project. Another organization's preview, one
 * outside a project-scoped key's project and one that does not exist all look the same: 404.
 */
export async function loadPreview({ deps }: RouteDeps, c: Context<AppEnv>, previewId: string): Promise<{ preview: PreviewItem; project: Project }> {
  const p = c.var.principal;
  const notFound = () => new AppError("not_found", `preview ${previewId} not found`);
  const preview = await getPreview(deps, previewId);
  if (!preview || preview.organization_id !== p.organization_id || (p.project_id && p.project_id !== preview.project_id)) throw notFound();
  const project = await getProject(deps, preview.project_id);
  if (!project) throw notFound();
  return { preview, project };
}
