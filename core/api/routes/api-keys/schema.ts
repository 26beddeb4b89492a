import { z } from "@hono/zod-openapi";
import { apiKeyItem } from "../../auth/keys.ts";

/** CapyDB's API key record shape: the stored key without its type and hash (never the plaintext). */
export const ApiKey = apiKeyItem
  .omit({ type: true, key_hash: true })
  .extend({
    key_prefix: z.string().openapi({ description: "The first characters of the key, to recognise it." }),
    is_active: z.boolean().openapi({ description: "Not revoked and not expired." }),
  })
  .openapi("ApiKey");

export const OrgParams = z.object({
  orgID: z.string().min(1).openapi({ param: { name: "orgID", in: "path" }, description: "Organization id." }),
});
