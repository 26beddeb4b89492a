import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Principal } from "../auth/principal.ts";
import type { ClerkVerifier } from "../auth/clerk.ts";
import type { ApiKeyResolver } from "../auth/resolve.ts";
import type { Deps } from "../deps.ts";
import type { Log } from "../log.ts";

export interface AppEnv {
  Variables: {
    requestId: string;
    log: Log;
    principal: Principal;
  };
}

export type App = OpenAPIHono<AppEnv>;

/** What every route registration receives. */
export interface RouteDeps {
  deps: Deps;
  keys: ApiKeyResolver;
  /** Present when Clerk is configured; otherwise session tokens are refused (401). */
  clerk?: ClerkVerifier;
}
