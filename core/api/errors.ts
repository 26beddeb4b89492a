import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { AppError, isUnavailable } from "../errors.ts";
import { redact } from "../redact.ts";
import type { AppEnv } from "./context.ts";

export const errorSchema = z.object({ error: z.string() }).openapi("Error", { description: "Every error body." });

/** OpenAPI response entries for the error statuses a route can answer. */
export function errorResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: "Invalid request",
    401: "Missing, malformed, unknown, expired or revoked credential",
    403: "The credential lacks the scope",
    404: "Unknown project or job, or one outside the caller's organization or project",
    409: "Conflict",
    413: "Body over 64 KiB",
    415: "Body is not JSON",
    503: "A dependency is unavailable; retry after the Retry-After delay",
  };
  return Object.fromEntries(
    statuses.map((s) => [s, { description: descriptions[s] ?? "Error", content: { "application/json": { schema: errorSchema } } }]),
  );
}

/** Formats a zod failure as one message naming the field: `cron_hour: must be <= 23`. */
export function describeZodError(error: z.ZodError, where = "body"): string {
  const issue = error.issues[0];
  if (!issue) return `invalid ${where}`;
  const path = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") return `${where} has unknown field(s): ${issue.keys.join(", ")}`;
  const missing = issue.code === "invalid_type" && (issue as { input?: unknown }).input === undefined;
  const message = missing ? "is required" : issue.message;
  return path ? `${path}: ${message}` : `${where}: ${message}`;
}

/** The one place errors become responses: `{"error": "..."}` with the mapped status. */
export function errorResponse(c: Context<AppEnv>, err: unknown): Response {
  if (err instanceof AppError) {
    if (err.retryAfterSeconds !== undefined) c.header("Retry-After", String(err.retryAfterSeconds));
    if (err.code === "unavailable") c.var.log?.warn("dependency unavailable", { error: err.message, cause: redact(String(err.cause ?? "")) });
    else if (err.status >= 500) c.var.log?.error("request failed", { error: err.message, cause: redact(String(err.cause ?? "")) });
    return c.json({ error: err.message }, err.status as 400);
  }
  if (err instanceof HTTPException) {
    const message =
      err.status === 400 && /JSON/i.test(err.message)
        ? "request body is not valid JSON"
        : err.status === 415
          ? "the request body must be JSON (Content-Type: application/json)"
          : err.message || "request rejected";
    return c.json({ error: message }, err.status);
  }
  if (isUnavailable(err)) {
    c.header("Retry-After", "5");
    c.var.log?.warn("dependency unavailable", { error: redact(String(err)) });
    return c.json({ error: "a dependency is unavailable, try again shortly" }, 503);
  }
  c.var.log?.error("unhandled error", { error: redact(err instanceof Error ? `${err.name}: ${err.message}` : String(err)) });
  return c.json({ error: "internal error" }, 500);
}
