import { createHash, randomBytes } from "node:crypto";
import { z } from "../zod.ts";
import { apiKeySchema, createApiKeyInput } from "../contract/api-keys.ts";
import { auditItem, type Actor } from "../audit/audit.ts";
import { keys } from "../db/keys.ts";
import type { TransactItem } from "../events/outbox.ts";
import { getItem, putItem, queryAll, queryPage, setFields, transactWrite, updateItem } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { newId } from "../ids.ts";
import { getOrganization, getProject } from "../orgs/orgs.ts";
import { orgManagementScopes, type Scope } from "./scopes.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

export const API_KEY_PREFIX = "capy_live_";
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** 40 base62 characters: ~238 bits of entropy. */
const SECRET_LENGTH = 40;
export const apiKeyPattern = /^capy_live_[0-9A-Za-z]{32,128}$/;

/** A new plaintext key from the CSPRNG, base62 without modulo bias (rejection sampling). */
export function generateApiKey(): string {
  let out = "";
  while (out.length < SECRET_LENGTH) {
    for (const b of randomBytes(64)) {
      if (b < 248 && out.length < SECRET_LENGTH) out += BASE62[b % 62];
    }
  }
  return API_KEY_PREFIX + out;
}

export const hashApiKey = (plaintext: string): string => createHash("sha256").update(plaintext).digest("hex");

/** The stored key: the record callers see (core/contract/api-keys.ts) plus its type and the key's SHA-256. */
export const apiKeyItem = apiKeySchema.extend({
  type: z.literal("api_key"),
  key_hash: z.string(),
});
export type ApiKeyItem = z.infer<typeof apiKeyItem>;

/** CapyDB's key record shape, as shown to callers (never the hash or the plaintext). */
export interface ApiKeyRecord extends Omit<ApiKeyItem, "type" | "key_hash"> {
  is_active: boolean;
}

export function isKeyActive(k: ApiKeyItem, now: Date): boolean {
  return !k.revoked_at && !(k.expires_at && Date.parse(k.expires_at) <= now.getTime());
}

export function apiKeyRecord(k: ApiKeyItem, now: Date): ApiKeyRecord {
  const { type: _t, key_hash: _h, ...rest } = k;
  return { ...rest, is_active: isKeyActive(k, now) };
}

/** Mints a key. The plaintext is returned here and never again (only its SHA-256 is stored). */
export async function createApiKey(
  deps: Db,
  input: z.input<typeof createApiKeyInput>,
  actor?: Actor,
  /** Writes that must commit with the key, or not at all (a CLI login's transition); with the condition failure's message. */
  also?: { items: TransactItem[]; conflictMessage: string },
): Promise<{ key: string; record: ApiKeyRecord }> {
  const data = createApiKeyInput.parse(input);
  const now = deps.now();
  if (!(await getOrganization(deps, data.organization_id))) {
    throw new AppError("not_found", `organization ${data.organization_id} does not exist`);
  }
  if (data.project_id) {
    const project = await getProject(deps, data.project_id);
    if (!project || project.organization_id !== data.organization_id) {
      throw new AppError("not_found", `project ${data.project_id} does not exist in organization ${data.organization_id}`);
    }
    const refused = data.scopes.filter((s) => orgManagementScopes.includes(s));
    if (refused.length) {
      throw new AppError("bad_request", `a project-scoped key cannot have organization scopes: ${refused.join(", ")}`);
    }
  }
  if (data.expires_at && Date.parse(data.expires_at) <= now.getTime()) {
    throw new AppError("bad_request", "expires_at must be in the future");
  }
  const plaintext = generateApiKey();
  const item: ApiKeyItem = {
    type: "api_key",
    id: newId("apiKey", now),
    name: data.name,
    key_prefix: plaintext.slice(0, API_KEY_PREFIX.length + 6),
    key_hash: hashApiKey(plaintext),
    organization_id: data.organization_id,
    project_id: data.project_id,
    scopes: [...new Set(data.scopes)],
    created_at: iso(now),
    expires_at: data.expires_at ? iso(new Date(data.expires_at)) : null,
    last_used_at: null,
    revoked_at: null,
    source: data.source,
  };
  const record = { ...keys.apiKey(item.key_hash), ...item, gsi1pk: keys.orgKeysIndex(item.organization_id), gsi1sk: item.id };
  if (!actor && !also) await putItem(deps, record, { condition: "attribute_not_exists(pk)" });
  else {
    const audit = actor
      ? [
          auditItem(deps, {
            organization_id: item.organization_id,
            project_id: item.project_id,
            action: "api_key.created",
            actor,
            target_type: "api_key",
            target_id: item.id,
            metadata: {
              api_key_id: item.id,
              name: item.name,
              key_prefix: item.key_prefix,
              scopes: item.scopes,
              project_id: item.project_id,
              expires_at: item.expires_at,
              source: item.source,
            },
          }),
        ]
      : [];
    await transactWrite(
      deps,
      [{ Put: { TableName: deps.table, Item: record, ConditionExpression: "attribute_not_exists(pk)" } }, ...audit, ...(also?.items ?? [])],
      also?.conflictMessage,
    );
  }
  return { key: plaintext, record: apiKeyRecord(item, now) };
}

/** Looks a plaintext key up by its hash. Undefined when unknown (callers decide 401). */
export async function findApiKey(deps: Db, plaintext: string): Promise<ApiKeyItem | undefined> {
  if (!apiKeyPattern.test(plaintext)) return undefined;
  return getItem(deps, apiKeyItem, keys.apiKey(hashApiKey(plaintext)), false);
}

export async function listApiKeys(deps: Db, organizationId: string): Promise<ApiKeyRecord[]> {
  const items = await queryAll(deps, apiKeyItem, {
    IndexName: "gsi1",
    KeyConditionExpression: "gsi1pk = :p",
    ExpressionAttributeValues: { ":p": keys.orgKeysIndex(organizationId) },
    ScanIndexForward: false,
  });
  const now = deps.now();
  return items.map((k) => apiKeyRecord(k, now));
}

async function findApiKeyById(deps: Db, organizationId: string, keyId: string): Promise<ApiKeyItem | undefined> {
  const page = await queryPage(deps, apiKeyItem, {
    IndexName: "gsi1",
    KeyConditionExpression: "gsi1pk = :p AND gsi1sk = :k",
    ExpressionAttributeValues: { ":p": keys.orgKeysIndex(organizationId), ":k": keyId },
  });
  return page.items[0];
}

/**
 * Who revokes through the API: a key may revoke only keys whose scopes it holds itself (the rule
 * creation applies to granting), so a key cannot take away a more powerful one; an organization
 * admin's session may revoke any. Operators (`capydb-admin`) pass none.
 */
export interface Revoker {
  scopes: readonly Scope[];
  is_admin: boolean;
}

/** Revokes a key (idempotent). Caches that resolved it stop accepting it within their window. */
export async function revokeApiKey(deps: Db, organizationId: string, keyId: string, actor?: Actor, revoker?: Revoker): Promise<ApiKeyRecord> {
  const found = await findApiKeyById(deps, organizationId, keyId);
  if (!found) throw new AppError("not_found", `api key ${keyId} does not exist`);
  if (revoker && !revoker.is_admin) {
    const lacking = found.scopes.filter((s) => !revoker.scopes.includes(s));
    if (lacking.length) throw new AppError("forbidden", `cannot revoke a key with scopes you lack: ${lacking.join(", ")}`);
  }
  if (found.revoked_at) return apiKeyRecord(found, deps.now());
  if (actor) {
    const revokedAt = iso(deps.now());
    // Conditional on it not being revoked yet: a second, racing revoke records no second event.
    await transactWrite(deps, [
      {
        Update: {
          TableName: deps.table,
          Key: keys.apiKey(found.key_hash),
          UpdateExpression: "SET revoked_at = :at",
          ConditionExpression: "attribute_exists(pk) AND attribute_type(revoked_at, :null)",
          ExpressionAttributeValues: { ":at": revokedAt, ":null": "NULL" },
        },
      },
      auditItem(deps, {
        organization_id: found.organization_id,
        project_id: found.project_id,
        action: "api_key.revoked",
        actor,
        target_type: "api_key",
        target_id: found.id,
        metadata: { api_key_id: found.id, name: found.name, key_prefix: found.key_prefix },
      }),
    ]).catch(async (err: unknown) => {
      if (err instanceof AppError && err.code === "conflict") return; // revoked meanwhile: idempotent
      throw err;
    });
    const now = await findApiKeyById(deps, organizationId, keyId);
    return apiKeyRecord(now?.revoked_at ? now : { ...found, revoked_at: revokedAt }, deps.now());
  }
  const updated = await updateItem(deps, apiKeyItem, {
    Key: keys.apiKey(found.key_hash),
    ...setFields({ revoked_at: iso(deps.now()) }),
    ConditionExpression: "attribute_exists(pk)",
  });
  return apiKeyRecord(updated, deps.now());
}

/** Records use, at most once a minute per key, so authentication stays one read per request. */
export async function touchApiKey(deps: Db, k: ApiKeyItem): Promise<void> {
  const now = deps.now();
  if (k.last_used_at && now.getTime() - Date.parse(k.last_used_at) < 60_000) return;
  await updateItem(deps, apiKeyItem, {
    Key: keys.apiKey(k.key_hash),
    ...setFields({ last_used_at: iso(now) }),
    ConditionExpression: "attribute_exists(pk)",
  });
}

export type { Scope };
