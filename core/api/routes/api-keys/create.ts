import { createRoute, z } from "@hono/zod-openapi";
import { actorOf } from "../../audit/audit.ts";
import { createApiKey, createApiKeyInput } from "../../auth/keys.ts";
import { AppError } from "../../errors.ts";
import { requireOwnOrganization, scopeGuard } from "../auth.ts";
import type { App, RouteDeps } from "../context.ts";
import { errorResponses } from "../errors.ts";
import { security } from "../schemas.ts";
import { ApiKey, OrgParams } from "./api-keys.ts";

export const CreateApiKeyRequest = createApiKeyInput
  .pick({ name: true, scopes: true, project_id: true, expires_at: true })
  .extend({
    project_id: createApiKeyInput.shape.project_id.meta({ description: "Scope the key to one project (prj_...); absent or null: the whole organization." }),
    expires_at: createApiKeyInput.shape.expires_at.meta({ description: "RFC 3339; absent: never expires." }),
  })
  .openapi("CreateApiKeyRequest");
export const CreateApiKeyResponse = z.object({
  key: z.string().openapi({ description: "The plaintext key (capy_live_...): shown this once, never again." }),
  plaintext_api_key: z.string().openapi({ description: "The same plaintext key, under the name CapyDB's published clients read." }),
  api_key: ApiKey,
});

export const createApiKeyRoute = createRoute({
  method: "post",
  path: "/v1/organizations/{orgID}/api-keys",
  tags: ["API keys"],
  summary: "Create an API key (the plaintext is in this response only)",
  security,
  middleware: [scopeGuard("api_keys:write")] as const,
  request: { params: OrgParams, body: { required: true, content: { "application/json": { schema: CreateApiKeyRequest } } } },
  responses: {
    201: { description: "The key and its record", content: { "application/json": { schema: CreateApiKeyResponse } } },
    ...errorResponses(400, 401, 403, 404, 413, 415),
  },
});

export function registerCreateApiKey(app: App, r: RouteDeps) {
  app.openapi(createApiKeyRoute, async (c) => {
    const { orgID } = c.req.valid("param");
    requireOwnOrganization(c, orgID);
    const input = c.req.valid("json");
    // A key never carries more power than the caller who makes it.
    const lacking = input.scopes.filter((s) => !c.var.principal.scopes.includes(s));
    if (lacking.length) throw new AppError("forbidden", `cannot grant scopes you lack: ${lacking.join(", ")}`);
    const { key, record } = await createApiKey(r.deps, {
      organization_id: orgID,
      name: input.name,
      scopes: input.scopes,
      project_id: input.project_id ?? null,
      expires_at: input.expires_at ?? null,
      source: "api",
    }, actorOf(c.var.principal));
    c.var.log.info("api key created", { api_key_id: record.id });
    return c.json({ key, plaintext_api_key: key, api_key: record }, 201);
  });
}
