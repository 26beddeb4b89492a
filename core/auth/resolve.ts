import type { Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { apiKeyPattern, findApiKey, hashApiKey, isKeyActive, touchApiKey, type ApiKeyItem } from "./keys.ts";
import type { Principal } from "./principal.ts";

/**
 * Resolves API keys to principals with a short in-process cache, so a request costs no DynamoDB
 * read for its key most of the time. A revoked key keeps working for at most `ttlMs` in a process
 * that cached it (60 s by default; the README says so).
 */
export class ApiKeyResolver {
  /** One lookup per key and window: concurrent requests with the same key share it. */
  private cache = new Map<string, { lookup: Promise<ApiKeyItem | undefined>; item?: ApiKeyItem; until: number }>();
  constructor(
    private readonly deps: Pick<Deps, "ddb" | "table" | "now" | "log">,
    private readonly ttlMs = 60_000,
    private readonly maxEntries = 10_000,
  ) {}

  async resolve(plaintext: string): Promise<Principal> {
    if (!apiKeyPattern.test(plaintext)) throw new AppError("unauthorized", "the API key is malformed");
    const hash = hashApiKey(plaintext);
    const now = this.deps.now();
    let entry = this.cache.get(hash);
    if (!entry || entry.until <= now.getTime()) {
      const lookup = findApiKey(this.deps, plaintext);
      const fresh: NonNullable<typeof entry> = { lookup, until: now.getTime() + this.ttlMs };
      entry = fresh;
      if (this.cache.size >= this.maxEntries) this.cache.clear();
      this.cache.set(hash, fresh);
      lookup.then(
        (found) => {
          fresh.item = found;
          if (found && isKeyActive(found, now)) {
            touchApiKey(this.deps, found).catch((err: unknown) => this.deps.log.warn("could not record key use", { error: String(err) }));
          }
        },
        // A failed lookup (DynamoDB unavailable) is not cached: the next request tries again.
        () => {
          if (this.cache.get(hash) === fresh) this.cache.delete(hash);
        },
      );
    }
    const item = await entry.lookup;
    if (!item) throw new AppError("unauthorized", "the API key is not valid");
    if (item.revoked_at) throw new AppError("unauthorized", "the API key has been revoked");
    if (item.expires_at && Date.parse(item.expires_at) <= now.getTime()) throw new AppError("unauthorized", "the API key has expired");
    return {
      auth_source: "api_key",
      organization_id: item.organization_id,
      project_id: item.project_id,
      scopes: item.scopes,
      user_id: null,
      is_admin: false,
      key_id: item.id,
    };
  }

  /** Forgets a key (after revoking it in this process, so this instance refuses it at once). */
  forget(keyId: string): void {
    for (const [hash, entry] of this.cache) if (!entry.item || entry.item.id === keyId) this.cache.delete(hash);
  }

  /** Forgets everything. */
  clear(): void {
    this.cache.clear();
  }
}
