import { z } from "../zod.ts";
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
    429: "Too many requests; retry after the Retry-After delay",
    503: "A dependency is unavailable; retry after the Retry-After delay",
  };
  return Object.fromEntries(statuses.map((s) => [s, { description: descriptions[s] ?? "Error", content: { "application/json": { schema: errorSchema } } }]));
}

/** What was sent, briefly: `null`, `number 5`, `string "abc"` (a long string shortened, with its length), `array`. */
export function describeSent(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "string") {
    const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
    return value.length > 40 ? `string ${shown} (${value.length} characters)` : `string ${shown}`;
  }
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return `${typeof value} ${String(value)}`;
  return typeof value;
}

/** The value at `path` in what was sent; `undefined` when it (or a parent) is absent. */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const key of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

const typeNames: Record<string, string> = { int: "integer" };

/**
 * Formats a zod failure as one message naming the field and, for a value of the wrong type or
 * outside its allowed values, what was expected and what was sent: `label: expected string, got
 * null`, `mode: expected one of "empty"|"clone", got string "fork"`. A field that was not sent at
 * all `is required`. `input` is what was validated (the body, query, path or headers); without it
 * the sent value cannot be shown and zod's own message is used.
 */
export function describeZodError(error: z.ZodError, where = "body", input?: unknown): string {
  const issue = error.issues[0];
  if (!issue) return `invalid ${where}`;
  const path = issue.path.map(String).join(".");
  const prefix = path ? `${path}: ` : `${where}: `;
  if (issue.code === "unrecognized_keys") return `${where} has unknown field(s): ${issue.keys.join(", ")}`;
  const sent = valueAt(input, issue.path);
  if (issue.code === "invalid_type" || issue.code === "invalid_value") {
    if (sent === undefined) return `${prefix}is required`;
    const expected =
      issue.code === "invalid_type"
        ? (typeNames[issue.expected] ?? issue.expected)
        : issue.values.length === 1
          ? JSON.stringify(issue.values[0])
          : `one of ${issue.values.map((v) => JSON.stringify(v)).join("|")}`;
    return `${prefix}expected ${expected}, got ${describeSent(sent)}`;
  }
  // A number out of range shows the number (a query parameter arrives as its text).
  if ((issue.code === "too_big" || issue.code === "too_small") && issue.origin === "number" && (typeof sent === "number" || typeof sent === "string")) {
    return `${prefix}${issue.message}, got ${sent}`;
  }
  return `${prefix}${issue.message}`;
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
