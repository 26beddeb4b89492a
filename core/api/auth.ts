import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { looksLikeJwt } from "../auth/clerk.ts";
import type { Principal } from "../auth/principal.ts";
import type { Scope } from "../auth/scopes.ts";
import { AppError } from "../errors.ts";
import { isId } from "../ids.ts";
import { getProject, type Project } from "../orgs/orgs.ts";
import { getPreview, type PreviewItem } from "../previews/previews.ts";
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
async function authenticate(c: Context<AppEnv>, { keys, clerk }: RouteDeps): Promise<void> {
  const credential = credentialOf(c);
  let principal: Principal;
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
}

/**
 * Paths under `/v1` that answer without a credential (Hono route patterns, as registered). Anything
 * else under `/v1`, a prefix added tomorrow included, needs one: the API is closed by default.
 */
export const PUBLIC_ROUTES: readonly string[] = [
  "GET /v1/openapi.json",
  // The CLI's device login: starting one needs no credential, polling needs the session's poll token.
  "POST /v1/cli/login/sessions",
  "GET /v1/cli/login/sessions/:sessionID",
];

/** The middlewares a route may declare (the family below); `guardV1` checks that one is there. */
const declaredAccess = new WeakSet<MiddlewareHandler<AppEnv>>();
function access(check: (c: Context<AppEnv>) => Promise<void> | void): MiddlewareHandler<AppEnv> {
  const mw: MiddlewareHandler<AppEnv> = async (c, next) => {
    await check(c);
    await next();
  };
  declaredAccess.add(mw);
  return mw;
}

/**
 * The gate in front of everything under `/v1`: a public route passes; anything else needs a valid
 * credential (401), and a route that declares none of the access middlewares below is refused (403)
 * rather than served to any caller: forgetting the declaration fails closed.
 */
export function guardV1(r: RouteDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const matched = matchedRoutes(c).filter((m) => m.method !== "ALL");
    if (matched.some((m) => PUBLIC_ROUTES.includes(`${m.method} ${m.path}`))) return next();
    await authenticate(c, r);
    if (matched.length > 0 && !matched.some((m) => declaredAccess.has(m.handler as MiddlewareHandler<AppEnv>))) {
      c.var.log.error("route declares no access middleware: refused", { method: c.req.method, path: matched[0]?.path });
      throw new AppError("forbidden", "this route declares no access rule");
    }
    await next();
  };
}

function requireScope(c: Context<AppEnv>, scope: Scope): void {
  if (!c.var.principal.scopes.includes(scope)) {
    throw new AppError("forbidden", `this credential lacks the ${scope} scope`);
  }
}

/**
 * Loads a project the caller may act on. Another organization's project, a sibling of a
 * project-scoped key's project and a project that does not exist all look the same: 404.
 */
async function loadProject({ deps }: RouteDeps, c: Context<AppEnv>, projectId: string): Promise<Project> {
  const p = c.var.principal;
  const notFound = () => new AppError("not_found", `project ${projectId} not found`);
  if (p.project_id && p.project_id !== projectId) throw notFound();
  if (!isId("project", projectId)) throw notFound();
  const project = await getProject(deps, projectId);
  if (!project || project.organization_id !== p.organization_id) throw notFound();
  return project;
}

/**
 * Loads a preview the caller may act on, with its project. Another organization's preview, one
 * outside a project-scoped key's project and one that does not exist all look the same: 404.
 */
async function loadPreview({ deps }: RouteDeps, c: Context<AppEnv>, previewId: string): Promise<{ preview: PreviewItem; project: Project }> {
  const p = c.var.principal;
  const notFound = () => new AppError("not_found", `preview ${previewId} not found`);
  const preview = await getPreview(deps, previewId);
  if (!preview || preview.organization_id !== p.organization_id || (p.project_id && p.project_id !== preview.project_id)) throw notFound();
  const project = await getProject(deps, preview.project_id);
  if (!project) throw notFound();
  return { preview, project };
}

/*
 * The access family: every route under /v1 declares exactly one, first in its middleware, so the
 * checks run before the request is validated and the handler starts authorized:
 *
 * ```ts
 * export const listThingsRoute = createRoute({ ..., middleware: [projectAccess("backups:read")] as const });
 * app.openapi(listThingsRoute, async (c) => { const project = c.var.project; ... });
 * ```
 */

/** Any authenticated caller, whatever its scopes (`GET /v1/me`). */
export const callerAccess = (): MiddlewareHandler<AppEnv> => access(() => {});

/** The scope alone: routes over the caller's whole organization (`/v1/projects`, `/v1/jobs/{jobID}`). */
export const scopeAccess = (scope: Scope): MiddlewareHandler<AppEnv> => access((c) => requireScope(c, scope));

/**
 * `/v1/organizations/{orgID}/...`: the scope, then the caller's own organization; another one's id
 * (or any, for a project-scoped key) is a 404.
 */
export const orgAccess = (scope: Scope): MiddlewareHandler<AppEnv> =>
  access((c) => {
    requireScope(c, scope);
    const orgId = c.req.param("orgID") ?? "";
    const p = c.var.principal;
    if (p.organization_id !== orgId || p.project_id) throw new AppError("not_found", `organization ${orgId} not found`);
  });

/** `/v1/projects/{projectID}/...`: the scope, then the project (`c.var.project`). */
export const projectAccess = (scope: Scope): MiddlewareHandler<AppEnv> =>
  access(async (c) => {
    requireScope(c, scope);
    c.set("project", await loadProject(c.var.routeDeps, c, c.req.param("projectID") ?? ""));
  });

/** `/v1/preview-databases/{previewID}/...`: the scope, then the preview and its project (`c.var.preview`, `c.var.project`). */
export const previewAccess = (scope: Scope): MiddlewareHandler<AppEnv> =>
  access(async (c) => {
    requireScope(c, scope);
    const { preview, project } = await loadPreview(c.var.routeDeps, c, c.req.param("previewID") ?? "");
    c.set("preview", preview);
    c.set("project", project);
  });
