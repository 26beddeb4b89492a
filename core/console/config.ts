import { object, string } from "zod/mini";
import { readSstLinks, type SstLinks } from "../sst-links.ts";

type Env = Record<string, string | undefined>;

// Named imports, not the `z` namespace: esbuild then keeps only what these two schemas use.
const link = object({ value: string() });

/** An SST secret link's value (core/sst-links.ts: resource.enc on Lambda), or a plain variable locally. */
function setting(links: SstLinks, env: Env, linkName: string, plain: string): string | undefined {
  const raw = links[linkName];
  if (raw) {
    const parsed = link.safeParse(raw);
    if (!parsed.success) throw new Error(`invalid setting ${linkName}: expected a secret link {"value": "..."}`);
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
  const links = readSstLinks(env);
  return {
    clerk: setting(links, env, "ClerkJwksUrl", "CLERK_JWKS_URL") !== undefined || setting(links, env, "ClerkIssuer", "CLERK_ISSUER") !== undefined,
  };
}
