/** The service's one error class. `code` decides the HTTP status (see `statusOf`). */
export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "payload_too_large"
  | "unsupported_media_type"
  | "too_many_requests"
  | "unavailable"
  | "internal";

const statuses: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  unavailable: 503,
  internal: 500,
};

export interface AppErrorOptions {
  cause?: unknown;
  /** A conflict caused by a concurrent transaction on the same items, not by the items' state: retrying can succeed. */
  contention?: boolean;
  /** Sent as `Retry-After` (503s always carry one). */
  retryAfterSeconds?: number;
}

export class AppError extends Error {
  override name = "AppError";
  readonly contention: boolean;
  readonly retryAfterSeconds?: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.contention = options.contention ?? false;
    this.retryAfterSeconds = options.retryAfterSeconds ?? (code === "unavailable" ? 5 : undefined);
  }
  get status(): number {
    return statuses[this.code];
  }
}

export const statusOf = (code: ErrorCode): number => statuses[code];

/** Names of AWS SDK errors that mean "the dependency is unreachable or overloaded", not "your bug". */
const unavailableNames = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "TimeoutError",
  "RequestTimeout",
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
  "ServiceUnavailable",
  "SlowDown",
]);

/** True for network failures and AWS throttling/5xx: worth a 503 with Retry-After, or a retry. */
export function isUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const x = e as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; cause?: unknown; errors?: unknown[] };
    if (x.name && unavailableNames.has(x.name)) return true;
    if (x.code && unavailableNames.has(x.code)) return true;
    if ((x.$metadata?.httpStatusCode ?? 0) >= 500) return true;
    if (Array.isArray(x.errors) && x.errors.some(isUnavailable)) return true;
    e = x.cause;
  }
  return false;
}
