import { createRoute } from "@hono/zod-openapi";
import { actorOf } from "../../../audit/audit.ts";
import { createApiKey } from "../../../auth/keys.ts";
import { AppError } from "../../../errors.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { OrgParams, security } from "../../../contract/shared.ts";
import { CreateApiKeyRequest, CreateApiKeyResponse } from "../../../contract/api-keys.ts";

export const createApiKeyRoute = createRoute({
  method: "post",
  path: "/v1/organizations/{orgID}/api-keys",
  tags: ["API keys"],
  summary: "Create an API key (the plaintext is in this response only)",
  security,
  middleware: [orgAccess("api_keys:write")] as const,
  request: { params: OrgParams, body: { required: true, content: { "application/json": { schema: CreateApiKeyRequest } } } },
  responses: {
    201: { description: "The key and its record", content: { "application/json": { schema: CreateApiKeyResponse } } },
    ...errorResponses(400, 401, 403, 404, 413, 415),
  },
});

export function registerCreateApiKey(app: App, r: RouteDeps) {
  app.openapi(createApiKeyRoute, async (c) => {
    const { orgID } = c.req.valid("param");
    const input = c.req.valid("json");
    // A key never carries more power than the caller who makes it.
    const lacking = input.scopes.filter((s) => !c.var.principal.scopes.includes(s));
    if (lacking.length) throw new AppError("forbidden", `cannot grant scopes you lack: ${lacking.join(", ")}`);
    const { key, record } = await createApiKey(
      r.deps,
      {
        organization_id: orgID,
        name: input.name,
        scopes: input.scopes,
        project_id: input.project_id ?? null,
        expires_at: input.expires_at ?? null,
        source: "api",
      },
      actorOf(c.var.principal),
    );
    c.var.log.info("api key created", { api_key_id: record.id });
    return c.json({ key, plaintext_api_key: key, api_key: record }, 201);
  });
}
