import { idSchema, z } from "../zod.ts";
import { scopeSchema } from "./scopes.ts";

/** How a key was made: over the API, by an operator, or by a device login of the CLI (`capydb login`). */
export const keySources = ["api", "admin", "cli"] as const;
export const keySourceSchema = z.enum(keySources);

/** CapyDB's API key record as callers see it: the stored key without its type and hash (never the plaintext). */
export const apiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  key_prefix: z.string(),
  organization_id: z.string(),
  project_id: z.string().nullable(),
  scopes: z.array(scopeSchema),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
  /** How the key was made: over the API, or by an operator (`capydb-admin`, the local seed). Keys stored before this field existed were made over the API. */
  source: keySourceSchema.default("api"),
});

export const createApiKeyInput = z.object({
  organization_id: idSchema("organization"),
  name: z.string().min(1).max(100),
  scopes: z.array(scopeSchema).min(1),
  project_id: idSchema("project").nullable().default(null),
  expires_at: z.iso.datetime().nullable().default(null),
  source: keySourceSchema.default("admin"),
});

export const ApiKey = apiKeySchema
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
