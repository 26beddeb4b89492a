import { object, string } from "zod/mini";

type Env = Record<string, string | undefined>;

// Named imports, not the `z` namespace: esbuild then keeps only what these two schemas use.
const link = object({ value: string() });

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
    const parsed = link.safeParse(json);
    if (!parsed.success) throw new Error(`invalid setting SST_RESOURCE_${linkName}: expected {"value": "..."}`);
    if (parsed.data.value !== "") return parsed.data.value;
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
