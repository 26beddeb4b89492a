import { createRoute, z } from "@hono/zod-openapi";
import { scopeSchema } from "../../auth/scopes.ts";
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
export const MeResponse = z.object({ principal: Principal });

export const meRoute = createRoute({
  method: "get",
  path: "/v1/me",
  tags: ["Identity"],
  summary: "Who is calling: the credential's organization, project scope and scopes",
  security,
  responses: {
    200: { description: "The caller", content: { "application/json": { schema: MeResponse } } },
    ...errorResponses(401, 403),
  },
});

export function registerMe(app: App, _r: RouteDeps) {
  app.openapi(meRoute, (c) => {
    const { key_id: _k, ...principal } = c.var.principal;
    return c.json({ principal }, 200);
  });
}
