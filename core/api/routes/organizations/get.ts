import { createRoute } from "@hono/zod-openapi";
import { AppError } from "../../../errors.ts";
import { getOrganization, toOrganization } from "../../../orgs/orgs.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { OrgParams, security } from "../../../contract/shared.ts";
import { GetOrganizationResponse } from "../../../contract/organizations.ts";

export const getOrganizationRoute = createRoute({
  method: "get",
  path: "/v1/organizations/{orgID}",
  tags: ["Identity"],
  summary: "Get the caller's organization (another organization's id is a 404)",
  security,
  middleware: [orgAccess("organizations:read")] as const,
  request: { params: OrgParams },
  responses: {
    200: { description: "The organization", content: { "application/json": { schema: GetOrganizationResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerGetOrganization(app: App, r: RouteDeps) {
  app.openapi(getOrganizationRoute, async (c) => {
    const { orgID } = c.req.valid("param");
    const org = await getOrganization(r.deps, orgID);
    if (!org) throw new AppError("not_found", `organization ${orgID} not found`);
    return c.json({ organization: toOrganization(org) }, 200);
  });
}
