import { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { randomUUID } from "node:crypto";
import { ApiKeyResolver } from "../auth/resolve.ts";
import type { Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { redact } from "../redact.ts";
import { guardV1 } from "./auth.ts";
import type { App, AppEnv, RouteDeps } from "./context.ts";
import { describeZodError, errorResponse } from "./errors.ts";
import { awsHealthChecks, runHealthChecks, type HealthCheck } from "./health.ts";
import { ClerkVerifier } from "../auth/clerk.ts";
import type { Config } from "../config.ts";
import { registerRoutes } from "./routes/index.ts";

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

  // Closed by default: every path under /v1, a prefix added later included, needs a credential
  // (unless it is on auth.ts's short public list) and a route that declares its access.
  // First, so that nothing registered under /v1 can run before it.
  app.use("/v1/*", guardV1(r));
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

  registerRoutes(app, r);

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
