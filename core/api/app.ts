import { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { randomUUID } from "node:crypto";
import { ApiKeyResolver } from "../auth/resolve.ts";
import type { Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { redact } from "../redact.ts";
import { authenticate } from "./auth.ts";
import type { App, AppEnv, RouteDeps } from "./context.ts";
import { describeZodError, errorResponse } from "./errors.ts";
import { awsHealthChecks, runHealthChecks, type HealthCheck } from "./health.ts";
import { ClerkVerifier } from "../auth/clerk.ts";
import type { Config } from "../config.ts";
import { registerCreateApiKey } from "./routes/api-keys.create.ts";
import { registerListApiKeys } from "./routes/api-keys.list.ts";
import { registerRevokeApiKey } from "./routes/api-keys.revoke.ts";
import { registerMe } from "./routes/me.ts";
import { registerCreateBackup } from "./routes/backups.create.ts";
import { registerDownloadBackup } from "./routes/backups.download.ts";
import { registerCreateExport } from "./routes/exports.create.ts";
import { registerDownloadExport } from "./routes/exports.download.ts";
import { registerListExports } from "./routes/exports.list.ts";
import { registerListBackups } from "./routes/backups.list.ts";
import { registerGetJob } from "./routes/jobs.get.ts";
import { registerListJobs } from "./routes/jobs.list.ts";
import { registerListScheduledBackups } from "./routes/scheduled-backups.list.ts";
import { registerPutScheduledBackup } from "./routes/scheduled-backups.put.ts";
import { registerRestoreRoutes } from "./routes/restore-routes.ts";
import { registerCreateApproval } from "./routes/approvals.create.ts";
import { registerListProjectAuditEvents } from "./routes/audit-events.list.ts";
import { registerListOrganizationAuditEvents } from "./routes/audit-events.org-list.ts";
import { registerWebhookRoutes } from "./routes/webhooks.ts";

export const MAX_BODY_BYTES = 64 * 1024;

export interface AppOptions {
  deps: Deps;
  /**
   * Extra dependency checks for `GET /health` beside DynamoDB and SQS (the local stack adds S3
   * and PostgreSQL; the deployed API has no S3 client); `undefined` removes a default one.
   */
  healthChecks?: Record<string, HealthCheck | undefined>;
  /** How long a resolved API key is cached (default 60 s). */
  keyCacheMs?: number;
  /** Clerk settings; without them session tokens are refused (401). */
  clerk?: Config["clerk"];
}

const requestId: MiddlewareHandler<AppEnv> = async (c, next) => {
  const incoming = c.req.header("x-request-id");
  const id = incoming && /^[\w.-]{1,128}$/.test(incoming) ? incoming : randomUUID();
  c.set("requestId", id);
  c.header("x-request-id", id);
  await next();
};

/**
 * JSON bodies only: a body of another type is a 415 before any route sees it. A request without a
 * JSON content type is read (bounded by the body limit, and cached for the route) to tell an empty
 * body, which is fine, from a non-JSON one.
 */
const jsonOnly: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (["POST", "PUT", "PATCH"].includes(c.req.method)) {
    const type = c.req.header("content-type") ?? "";
    if (!/^application\/([\w.+-]*\+)?json\s*(;|$)/i.test(type) && c.req.header("content-length") !== "0") {
      if ((await c.req.text()).length > 0) {
        throw new AppError("unsupported_media_type", "the request body must be JSON (Content-Type: application/json)");
      }
    }
  }
  await next();
};

/** Path patterns of the API, for telling a wrong method (405) from an unknown path (404). */
function knownPaths(app: App): { re: RegExp; methods: Set<string> }[] {
  const byPath = new Map<string, Set<string>>();
  for (const r of app.routes) {
    if (r.method === "ALL") continue;
    const set = byPath.get(r.path) ?? new Set<string>();
    set.add(r.method);
    byPath.set(r.path, set);
  }
  return [...byPath].map(([path, methods]) => ({
    re: new RegExp(`^${path.replace(/:[^/]+/g, "[^/]+")}/?$`),
    methods,
  }));
}

/** The Hono app: the same object serves Lambda (`handle(app)`) and the local stack. */
export function createApp(opts: AppOptions): App {
  const { deps } = opts;
  const r: RouteDeps = {
    deps,
    keys: new ApiKeyResolver(deps, opts.keyCacheMs),
    clerk: opts.clerk ? new ClerkVerifier(opts.clerk, deps) : undefined,
  };
  const app: App = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const { target, data } = result as { target?: string; data?: unknown };
        const where = target === "json" ? "body" : target === "query" ? "query" : target === "param" ? "path" : target === "header" ? "header" : "request";
        return c.json({ error: describeZodError(result.error, where, data) }, 400);
      }
    },
  });

  app.use("*", requestId);
  app.use("*", async (c, next) => {
    c.set("routeDeps", r);
    await next();
    c.res.headers.set("X-Content-Type-Options", "nosniff");
  });
  app.use("*", async (c, next) => {
    const started = performance.now();
    c.set("log", deps.log.createChild({ persistentKeys: { request_id: c.var.requestId } }));
    await next();
    c.var.log.info("request", {
      method: c.req.method,
      path: redact(c.req.path),
      status: c.res.status,
      ms: Math.round(performance.now() - started),
    });
  });
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new AppError("payload_too_large", `the request body is over ${MAX_BODY_BYTES / 1024} KiB`);
      },
    }),
  );
  app.use("*", jsonOnly);

  const healthChecks = Object.fromEntries(
    Object.entries({ ...awsHealthChecks(deps), ...opts.healthChecks }).filter((e): e is [string, HealthCheck] => e[1] !== undefined),
  );
  app.get("/health", async (c) => {
    const report = await runHealthChecks(healthChecks);
    return c.json(report, report.status === "ok" ? 200 : 503);
  });

  app.doc31("/v1/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "CapyDB Backups API",
      version: "1.0.0",
      description: "On-demand and scheduled backups of CapyDB project databases, and the jobs that make them.",
    },
    servers: [{ url: "/" }],
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "Org or project-scoped API key, format capy_live_...; Clerk session tokens also accepted.",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKeyAuth", {
    type: "apiKey",
    in: "header",
    name: "X-API-Key",
    description: "Org or project-scoped API key, format capy_live_...",
  });

  app.use("/v1/projects", authenticate(r));
  app.use("/v1/projects/*", authenticate(r));
  app.use("/v1/preview-databases/*", authenticate(r));
  app.use("/v1/jobs/*", authenticate(r));
  app.use("/v1/organizations/*", authenticate(r));
  app.use("/v1/me", authenticate(r));
  registerListScheduledBackups(app, r);
  registerPutScheduledBackup(app, r);
  registerListBackups(app, r);
  registerCreateBackup(app, r);
  registerDownloadBackup(app, r);
  registerCreateExport(app, r);
  registerListExports(app, r);
  registerDownloadExport(app, r);
  registerListJobs(app, r);
  registerGetJob(app, r);
  registerCreateApiKey(app, r);
  registerListApiKeys(app, r);
  registerRevokeApiKey(app, r);
  registerMe(app, r);
  registerRestoreRoutes(app, r);
  registerCreateApproval(app, r);
  registerListProjectAuditEvents(app, r);
  registerListOrganizationAuditEvents(app, r);
  registerWebhookRoutes(app, r);

  const paths = knownPaths(app);
  app.notFound((c) => {
    const known = paths.find((p) => p.re.test(c.req.path));
    if (known && !known.methods.has(c.req.method)) {
      c.header("Allow", [...known.methods].join(", "));
      return c.json({ error: `method ${c.req.method} is not allowed on ${c.req.path}` }, 405);
    }
    return c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404);
  });
  app.onError((err, c) => errorResponse(c, err));
  return app;
}
