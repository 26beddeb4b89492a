import { createRoute } from "@hono/zod-openapi";
import { listApiKeys } from "../../../auth/keys.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { OrgParams, security, unpagedQuery } from "../../../contract/shared.ts";
import { ListApiKeysResponse } from "../../../contract/api-keys.ts";

export const listApiKeysRoute = createRoute({
  method: "get",
  path: "/v1/organizations/{orgID}/api-keys",
  tags: ["API keys"],
  summary: "List the organization's API keys, newest first (never the plaintext)",
  security,
  middleware: [orgAccess("api_keys:read")] as const,
  request: { params: OrgParams, query: unpagedQuery("every key of the organization") },
  responses: {
    200: { description: "The keys", content: { "application/json": { schema: ListApiKeysResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerListApiKeys(app: App, r: RouteDeps) {
  app.openapi(listApiKeysRoute, async (c) => {
    const { orgID } = c.req.valid("param");
    return c.json({ api_keys: await listApiKeys(r.deps, orgID) }, 200);
  });
}
