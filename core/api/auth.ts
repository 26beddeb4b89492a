import type { Context, MiddlewareHandler } from "hono";
import { looksLikeJwt } from "../auth/clerk.ts";
import type { Scope } from "../auth/scopes.ts";
import { AppError } from "../errors.ts";
import { isId } from "../ids.ts";
import { getProject, type Project } from "../orgs/orgs.ts";
import type { AppEnv, RouteDeps } from "./context.ts";

/** Reads the credential from `Authorization: Bearer ...` or `X-API-Key`. */
function credentialOf(c: Context<AppEnv>): string {
  const auth = c.req.header("authorization");
  const apiKey = c.req.header("x-api-key");
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (!m?.[1]) throw new AppError("unauthorized", "the Authorization header must be `Bearer <token>`");
    return m[1];
  }
  if (apiKey !== undefined) {
    if (!apiKey.trim()) throw new AppError("unauthorized", "the X-API-Key header is empty");
    return apiKey.trim();
  }
  throw new AppError("unauthorized", "missing credential: send `Authorization: Bearer capy_live_...` or `X-API-Key`");
}

/**
 * Resolves the caller (API key, or Clerk session token when Clerk is configured) and stores it as
 * `principal`; 401 when there is no valid credential.
 */
export function authenticate({ keys, clerk }: RouteDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const credential = credentialOf(c);
    let principal;
    if (credential.startsWith("capy_live_")) principal = await keys.resolve(credential);
    else if (clerk && looksLikeJwt(credential)) principal = await clerk.verify(credential);
    else throw new AppError("unauthorized", "the credential is not a CapyDB API key or a valid session token");
    c.set("principal", principal);
    c.set(
      "log",
      c.var.log.createChild({
        persistentKeys: { organization_id: principal.organization_id, key_id: principal.key_id ?? undefined, user_id: principal.user_id ?? undefined },
      }),
    );
    await next();
  };
}

export function requireScope(c: Context<AppEnv>, scope: Scope): void {
  if (!c.var.principal.scopes.includes(scope)) {
    throw new AppError("forbidden", `this credential lacks the ${scope} scope`);
  }
}

/**
 * Loads a project the caller may act on. Another organization's project, a sibling of a
 * project-scoped key's project and a project that does not exist all look the same: 404.
 */
export async function loadProject({ deps }: Pick<RouteDeps, "deps">, c: Context<AppEnv>, projectId: string): Promise<Project> {
  const p = c.var.principal;
  const notFound = () => new AppError("not_found", `project ${projectId} not found`);
  if (p.project_id && p.project_id !== projectId) throw notFound();
  if (!isId("project", projectId)) throw notFound();
  const project = await getProject(deps, projectId);
  if (!project || project.organization_id !== p.organization_id) throw notFound();
  return project;
}

/** The caller's own organization, or 404 (another organization's id is indistinguishable from none). */
export function requireOwnOrganization(c: Context<AppEnv>, orgId: string): void {
  const p = c.var.principal;
  if (p.organization_id !== orgId || p.project_id) throw new AppError("not_found", `organization ${orgId} not found`);
}

/** Checks the scope before anything else (a route's first step). */
export function scopeGuard(scope: Scope): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    requireScope(c, scope);
    await next();
  };
}

/**
 * The preamble of every route under `/v1/projects/{projectID}/...`, as one middleware: the scope,
 * then the project (404 for a malformed id, another organization's project, or a sibling of a
 * project-scoped key's project). The handler reads `c.var.project`. Use it in the route:
 *
 * ```ts
 * export const listThingsRoute = createRoute({ ..., middleware: [projectAccess("backups:read")] as const });
 * app.openapi(listThingsRoute, async (c) => { const project = c.var.project; ... });
 * ```
 */
export function projectAccess(scope: Scope): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    requireScope(c, scope);
    c.set("project", await loadProject(c.var.routeDeps, c, c.req.param("projectID") ?? ""));
    await next();
  };
}
