import { z } from "@hono/zod-openapi";
import { projectSchema } from "../orgs/orgs.ts";

/**
 * Wire schemas of the restore half (SPEC section 5): projects, preview databases, restores and
 * restore points, named as OpenAPI components. Kept apart from schemas.ts so that the backup
 * half's components stay as they are.
 */
const timestamp = { type: "string", format: "date-time", example: "2026-11-26T02:15:00Z" } as const;
const at = () => z.string().openapi(timestamp);

export const Project = projectSchema.extend({ created_at: at(), updated_at: at() }).openapi("Project");
