import { createRoute } from "@hono/zod-openapi";
import { z } from "../../../zod.ts";
import { actorOf } from "../../../audit/audit.ts";
import { revokeApiKey } from "../../../auth/keys.ts";
import { AppError } from "../../../errors.ts";
import { isId } from "../../../ids.ts";
import { orgAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { OrgParams, security } from "../../../contract/shared.ts";
import { RevokeApiKeyResponse } from "../../../contract/api-keys.ts";

export const revokeApiKeyRoute = createRoute({
  method: "delete",
  path: "/v1/organizations/{orgID}/api-keys/{keyID}",
  tags: ["API keys"],
  summary:
    "Revoke an API key (idempotent; other API instances stop accepting it within 60 s). A key may revoke only keys whose scopes it holds (403 otherwise); an organization admin's session may revoke any",
  security,
  middleware: [orgAccess("api_keys:write")] as const,
  request: {
    params: OrgParams.extend({
      keyID: z
        .string()
        .min(1)
        .openapi({ param: { name: "keyID", in: "path" }, description: "API key id." }),
    }),
  },
  responses: {
    200: { description: "The revoked key", content: { "application/json": { schema: RevokeApiKeyResponse } } },
    ...errorResponses(401, 403, 404),
  },
});

export function registerRevokeApiKey(app: App, r: RouteDeps) {
  app.openapi(revokeApiKeyRoute, async (c) => {
    const { orgID, keyID } = c.req.valid("param");
    if (!isId("apiKey", keyID)) throw new AppError("not_found", `api key ${keyID} not found`);
    const record = await revokeApiKey(r.deps, orgID, keyID, actorOf(c.var.principal), c.var.principal).catch((err: unknown) => {
      if (err instanceof AppError && err.code === "not_found") throw new AppError("not_found", `api key ${keyID} not found`);
      throw err;
    });
    r.keys.forget(keyID);
    c.var.log.info("api key revoked", { api_key_id: keyID });
    return c.json({ api_key: record }, 200);
  });
}
