import { createRoute, z } from "@hono/zod-openapi";
import { scopeSchema } from "../../auth/scopes.ts";
import { AppError } from "../../errors.ts";
import { getOrganization, slugOf } from "../../orgs/orgs.ts";
import type { App, RouteDeps } from "../context.ts";
import { errorResponses } from "../errors.ts";
import { security } from "../schemas.ts";

export const Principal = z
  .object({
    auth_source: z.enum(["api_key", "clerk_session"]),
    organization_id: z.string(),
    project_id: z.string().nullable(),
    scopes: z.array(scopeSchema),
    user_id: z.string().nullable(),
    is_admin: z.boolean(),
  })
  .openapi("Principal");
export const Organization = z
  .object({ id: z.string(), name: z.string(), slug: z.string() })
  .openapi("Organization", { description: "The caller's organization (the slug is derived from the name)." });
export const MeResponse = z.object({ principal: Principal, organization: Organization });

export const meRoute = createRoute({
  method: "get",
  path: "/v1/me",
  tags: ["Identity"],
  summary: "Who is calling: the credential's organization, project scope and scopes",
  security,
  responses: {
    200: { description: "The caller", content: { "application/json": { schema: MeResponse } } },
    ...errorResponses(401, 403, 503),
  },
});

export function registerMe(app: App, r: RouteDeps) {
  app.openapi(meRoute, async (c) => {
    const { key_id: _k, ...principal } = c.var.principal;
    const org = await getOrganization(r.deps, principal.organization_id);
    if (!org) throw new AppError("unauthorized", "the credential's organization no longer exists");
    return c.json({ principal, organization: { id: org.id, name: org.name, slug: slugOf(org.name) } }, 200);
  });
}
