import { z } from "../../../zod.ts";
import { apiKeyItem, createApiKeyInput } from "../../../auth/keys.ts";

/** CapyDB's API key record shape: the stored key without its type and hash (never the plaintext). */
export const ApiKey = apiKeyItem
  .omit({ type: true, key_hash: true })
  .extend({
    key_prefix: z.string().openapi({ description: "The first characters of the key, to recognise it." }),
    is_active: z.boolean().openapi({ description: "Not revoked and not expired." }),
  })
  .openapi("ApiKey");

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

export const ListApiKeysResponse = z.object({ api_keys: z.array(ApiKey) });

export const RevokeApiKeyResponse = z.object({ api_key: ApiKey });
