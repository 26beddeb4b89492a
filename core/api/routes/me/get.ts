import { createRoute } from "@hono/zod-openapi";
import { AppError } from "../../../errors.ts";
import { getOrganization, toOrganization } from "../../../orgs/orgs.ts";
import { callerAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { MeResponse } from "../../../contract/me.ts";

export const meRoute = createRoute({
  method: "get",
  path: "/v1/me",
  tags: ["Identity"],
  summary: "Who is calling: the credential's organization, project scope and scopes",
  security,
  middleware: [callerAccess()] as const,
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
    return c.json({ principal, organization: toOrganization(org) }, 200);
  });
}
