import { AppError, isUnavailable } from "../errors.ts";

export type RetryClass = "transient" | "permanent";

/** What the last dump/restore tool run left behind, already redacted and capped (API-visible). */
export interface ToolReport {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A failed run, classified. `message` is one sentence a customer understands (it becomes the
 * job's `error`); `verification` marks failures of the restore check (the backup's
 * `verification_state` becomes failed with this message).
 */
export class WorkerFailure extends Error {
  override name = "WorkerFailure";
  constructor(
    readonly classification: RetryClass,
    message: string,
    readonly details: { report?: ToolReport; verification?: boolean; cause?: unknown } = {},
  ) {
    super(message, { cause: details.cause });
  }
  get report(): ToolReport | undefined {
    return this.details.report;
  }
}

/** The customer-facing sentences, one per kind of failure. */
export const messages = {
  auth: "The database server rejected the backup's credentials (authentication failed).",
  missingDatabase: (name: string) => `The database "${name}" does not exist on its server.`,
  permission: "The backup's database user lacks a permission it needs (permission denied).",
  version: "The dump tool's version does not match the database server's.",
  tooManyConnections: "The database server had too many connections.",
  restarting: "The database server was restarting.",
  locked: "A table was locked by another session for too long.",
  timeout: "The connection to the database server timed out.",
  unreachable: "Could not reach the database server (connection refused or lost).",
  contention: "The database server aborted a transaction under contention.",
  resources: "The database server ran short of resources (disk, memory or connections).",
} as const;

interface Rule {
  test: RegExp;
  classification: RetryClass;
  message: (m: RegExpMatchArray) => string;
}

/**
 * Tool stderr and driver messages, matched in the C locale (children run with LC_ALL=C; server
 * messages follow the server's lc_messages, which managed clusters leave in English).
 */
const rules: Rule[] = [
  {
    test: /password authentication failed|authentication failed for user|no pg_hba\.conf entry|role "[^"]*" does not exist|password must be supplied|no password supplied/i,
    classification: "permanent",
    message: () => messages.auth,
  },
  {
    test: /database "([^"]*)" does not exist/i,
    classification: "permanent",
    message: (m) => messages.missingDatabase(m[1] ?? ""),
  },
  {
    test: /permission denied|must be owner of|insufficient privilege/i,
    classification: "permanent",
    message: () => messages.permission,
  },
  {
    test: /server version mismatch|unsupported version \([^)]*\) in file header/i,
    classification: "permanent",
    message: () => messages.version,
  },
  {
    test: /too many clients|remaining connection slots are reserved|too many connections/i,
    classification: "transient",
    message: () => messages.tooManyConnections,
  },
  {
    test: /the database system is (starting up|shutting down|in recovery mode)|terminating connection due to administrator command|cannot connect now/i,
    classification: "transient",
    message: () => messages.restarting,
  },
  {
    test: /could not obtain lock|lock timeout|canceling statement due to (lock|statement) timeout/i,
    classification: "transient",
    message: () => messages.locked,
  },
  {
    test: /timeout expired|timed out|connection timeout|ETIMEDOUT/i,
    classification: "transient",
    message: () => messages.timeout,
  },
  {
    test: /connection refused|could not connect|ECONNREFUSED|server closed the connection unexpectedly|connection reset|ECONNRESET|connection terminated|could not (receive|send) data|SSL SYSCALL error|no route to host|network is unreachable|could not translate host name|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND|EPIPE/i,
    classification: "transient",
    message: () => messages.unreachable,
  },
];

/** SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
function classifySqlState(code: string, text: string): { classification: RetryClass; message: string } | undefined {
  const t = (message: string) => ({ classification: "transient" as const, message });
  const p = (message: string) => ({ classification: "permanent" as const, message });
  if (code === "28P01" || code === "28000") return p(messages.auth);
  if (code === "3D000") return p(messages.missingDatabase(/database "([^"]*)"/.exec(text)?.[1] ?? ""));
  if (code === "42501") return p(messages.permission);
  if (code === "53300") return t(messages.tooManyConnections);
  if (code.startsWith("08")) return t(messages.unreachable);
  if (code.startsWith("57P")) return t(messages.restarting);
  if (code === "55P03" || code === "57014") return t(messages.locked);
  if (code === "40001" || code === "40P01") return t(messages.contention);
  if (code.startsWith("53")) return t(messages.resources);
  return undefined;
}

/** Classifies tool stderr (pg_dump/pg_restore); undefined when nothing recognizable is in it. */
export function classifyText(text: string): { classification: RetryClass; message: string } | undefined {
  for (const r of rules) {
    const m = text.match(r.test);
    if (m) return { classification: r.classification, message: r.message(m) };
  }
  return undefined;
}

/** First line of an error, without the tool prefix, for a customer-facing sentence. */
export function firstErrorLine(text: string): string {
  const line =
    text
      .split("\n")
      .map((l) => l.trim())
      .find((l) => /error|fatal/i.test(l)) ??
    text
      .split("\n")
      .map((l) => l.trim())
      .find(Boolean) ??
    "";
  return line.replace(/^(pg_dump|pg_restore):\s*(error:\s*)?/i, "").slice(0, 300);
}

/**
 * Classifies anything a run can throw. Explicit verdicts (WorkerFailure) stand; driver and SDK
 * errors are read by SQLSTATE, network code, HTTP status and message. What nothing recognizes is
 * transient: retries are bounded by max_attempts, and a glitch we did not foresee deserves one.
 */
export function classify(err: unknown, origin: "database" | "storage" = "database"): WorkerFailure {
  if (err instanceof WorkerFailure) return err;
  const e = err as { code?: unknown; message?: unknown; name?: unknown; $metadata?: { httpStatusCode?: number } } | undefined;
  const text = `${String(e?.message ?? err)} ${typeof e?.code === "string" ? e.code : ""}`;
  if (typeof e?.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) {
    const byCode = classifySqlState(e.code, text);
    if (byCode) return new WorkerFailure(byCode.classification, byCode.message, { cause: err });
  }
  if (err instanceof AppError && err.code === "unavailable") {
    return new WorkerFailure("transient", "The service's own storage was briefly unavailable.", { cause: err });
  }
  const status = e?.$metadata?.httpStatusCode;
  if (origin === "storage" || status !== undefined) {
    if (isUnavailable(err) || status === undefined)
      return new WorkerFailure("transient", "Object storage was unavailable or throttled the transfer.", { cause: err });
    if (status >= 400 && status < 500) {
      return new WorkerFailure("permanent", `Object storage refused the backup (${String(e?.name ?? status)}).`, { cause: err });
    }
    return new WorkerFailure("transient", "Object storage failed the transfer.", { cause: err });
  }
  const byText = classifyText(text);
  if (byText) return new WorkerFailure(byText.classification, byText.message, { cause: err });
  if (isUnavailable(err)) return new WorkerFailure("transient", "A network connection failed during the backup.", { cause: err });
  return new WorkerFailure("transient", "The backup failed unexpectedly.", { cause: err });
}
