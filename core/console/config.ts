type Env = Record<string, string | undefined>;

/**
 * Checked by hand rather than with zod: the shape is one string, and zod (even zod/mini) would
 * be about two thirds of this function's bundle (174 of 267 KiB) and of its cold start.
 */
const linkValue = (json: unknown): string | undefined =>
  typeof json === "object" && json !== null && typeof (json as { value?: unknown }).value === "string" ? (json as { value: string }).value : undefined;

/** An SST secret link's value (`SST_RESOURCE_<name>` = `{"value": "..."}`), or a plain variable locally. */
function setting(env: Env, linkName: string, plain: string): string | undefined {
  const raw = env[`SST_RESOURCE_${linkName}`];
  if (raw) {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      throw new Error(`invalid setting SST_RESOURCE_${linkName}: not JSON`);
    }
    const value = linkValue(json);
    if (value === undefined) throw new Error(`invalid setting SST_RESOURCE_${linkName}: expected {"value": "..."}`);
    if (value !== "") return value;
  }
  return env[plain] || undefined;
}

/**
 * The console function's one setting: whether the API accepts Clerk session tokens (the sign-in
 * page then offers the browser's Clerk session). Read the way core/config.ts reads it for the API
 * (Clerk is on when its JWKS URL or issuer is set), from the same SST secrets.
 */
export function loadConsoleOptions(env: Env = process.env): { clerk: boolean } {
  return { clerk: setting(env, "ClerkJwksUrl", "CLERK_JWKS_URL") !== undefined || setting(env, "ClerkIssuer", "CLERK_ISSUER") !== undefined };
}
