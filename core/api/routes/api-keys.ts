import { z } from "@hono/zod-openapi";
import { scopeSchema } from "../../auth/scopes.ts";

/** CapyDB's API key record shape (never the plaintext, never the hash). */
export const ApiKey = z
  .object({
    id: z.string(),
    name: z.string(),
    key_prefix: z.string().openapi({ description: "The first characters of the key, to recognise it." }),
    organization_id: z.string(),
    project_id: z.string().nullable(),
    scopes: z.array(scopeSchema),
    created_at: z.string(),
    expires_at: z.string().nullable(),
    last_used_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
    is_active: z.boolean(),
  })
  .openapi("ApiKey");

export const OrgParams = z.object({
  orgID: z.string().min(1).openapi({ param: { name: "orgID", in: "path" }, description: "Organization id." }),
});
