import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Principal } from "../auth/principal.ts";
import type { ClerkVerifier } from "../auth/clerk.ts";
import type { ApiKeyResolver } from "../auth/resolve.ts";
import type { Deps } from "../deps.ts";
import type { Log } from "../log.ts";
import type { Project } from "../orgs/orgs.ts";
import type { PreviewItem } from "../previews/previews.ts";

export interface AppEnv {
  Variables: {
    requestId: string;
    log: Log;
    principal: Principal;
    /** What the routes were registered with (set for every request), for middleware declared at module level. */
    routeDeps: RouteDeps;
    /** Set by `projectAccess` and `previewAccess`: the project the route acts on, already authorized. */
    project: Project;
    /** Set by `previewAccess`: the preview the route acts on, already authorized. */
    preview: PreviewItem;
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
