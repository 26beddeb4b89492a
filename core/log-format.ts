/**
 * One log event (the attributes of a Powertools JSON line) as one line a person reads in a
 * terminal:
 *
 *   14:02:07.412 INFO  request POST /v1/projects/prj_01j.../backups 202 18ms
 *   14:02:07.530 INFO  job claimed job_01j... bkp_01j... state=running attempt=1
 *   14:02:08.301 INFO  backup dumped job_01j... bkp_01j... size=2.4MB dump=0.7s
 *
 * The time is the JSON line's own timestamp (its clock and time zone). Ids print bare (their
 * prefix says what they are), sizes and durations in units, other fields as key=value. The
 * Powertools envelope (service, sampling rate) is left out, and so are the ids that only matter
 * when something went wrong (request, API key, worker, organization): they show on WARN and ERROR
 * lines.
 */

type Attributes = Record<string, unknown>;

const ENVELOPE = new Set(["level", "message", "timestamp", "service", "sampling_rate", "xray_trace_id"]);
const QUIET_BELOW_WARN = new Set(["request_id", "worker_id", "organization_id", "key_id"]);
const PREFIXED_ID = /^[a-z]{2,5}_[0-9a-z]{26}$/;
/** Shown bare and first, in this order. */
const IDS = ["project_id", "job_id", "backup_id", "schedule_id", "api_key_id", "event_id"];

const SGR = {
  reset: "\x1b[0m",
  bold: "\x1b[1m",
  dim: "\x1b[2m",
  red: "\x1b[31m",
  green: "\x1b[32m",
  yellow: "\x1b[33m",
  blue: "\x1b[34m",
  magenta: "\x1b[35m",
  cyan: "\x1b[36m",
  gray: "\x1b[90m",
};
type Paint = keyof typeof SGR;

const LEVEL_PAINT: Record<string, Paint> = { DEBUG: "gray", INFO: "green", WARN: "yellow", ERROR: "red", CRITICAL: "red" };

export function formatLogLine(attributes: Attributes, opts: { color: boolean }): string {
  const paint = (style: Paint, text: string) => (opts.color ? `${SGR[style]}${text}${SGR.reset}` : text);
  const level = String(attributes.level ?? "INFO").toUpperCase();
  const loud = level === "WARN" || level === "ERROR" || level === "CRITICAL";
  const time = clock(attributes.timestamp);
  const parts: string[] = [paint("dim", time), paint(LEVEL_PAINT[level] ?? "reset", level.padEnd(5)), paint("bold", oneLine(String(attributes.message ?? "")))];

  const rest: Attributes = {};
  for (const [k, v] of Object.entries(attributes)) {
    if (ENVELOPE.has(k) || v === undefined || v === null || v === "") continue;
    if (!loud && QUIET_BELOW_WARN.has(k)) continue;
    rest[k] = v;
  }

  if (attributes.message === "request" && typeof rest.method === "string" && typeof rest.path === "string") {
    const status = Number(rest.status);
    parts.push(`${rest.method} ${rest.path}`, paint(status >= 500 ? "red" : status >= 400 ? "yellow" : status >= 300 ? "cyan" : "green", String(rest.status)));
    if (typeof rest.ms === "number") parts.push(paint("dim", `${rest.ms}ms`));
    for (const k of ["method", "path", "status", "ms"]) delete rest[k];
  }

  // The usual ids first, in a fixed order, then any other prefixed id (exp_..., apr_...), all bare.
  const ids = [
    ...IDS,
    ...Object.keys(rest).filter(
      (k) => k.endsWith("_id") && !IDS.includes(k) && !QUIET_BELOW_WARN.has(k) && typeof rest[k] === "string" && PREFIXED_ID.test(rest[k] as string),
    ),
  ];
  for (const k of ids) {
    if (typeof rest[k] === "string") {
      parts.push(paint("cyan", rest[k] as string));
      delete rest[k];
    }
  }
  for (const [k, v] of Object.entries(rest)) {
    const text = `${label(k)}=${value(k, v)}`;
    parts.push(k === "error" || k === "detail" ? paint(loud ? "red" : "reset", text) : k === "state" ? paint("magenta", text) : text);
  }
  return parts.join(" ");
}

/** `HH:MM:SS.mmm` of an ISO timestamp, as written (no time zone conversion). */
function clock(timestamp: unknown): string {
  const m = typeof timestamp === "string" ? /T(\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?)/.exec(timestamp) : null;
  if (!m) return new Date().toISOString().slice(11, 23);
  const [hms, frac = ""] = m[1]!.split(".");
  return `${hms}.${frac.padEnd(3, "0")}`;
}

/** `size_bytes` reads `size`, `dump_ms` reads `dump`: the unit is in the value. */
function label(key: string): string {
  if (key.endsWith("_bytes")) return key.slice(0, -"_bytes".length);
  if (key.endsWith("_ms")) return key.slice(0, -"_ms".length);
  return key;
}

function value(key: string, v: unknown): string {
  if (typeof v === "number" && key.endsWith("_bytes")) return bytes(v);
  if (typeof v === "number" && (key.endsWith("_ms") || key === "ms")) return duration(v);
  if (typeof v === "string") return /[\s="]/.test(v) || v.includes("\n") ? JSON.stringify(v) : v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (key === "window" && typeof v === "object" && v && "from" in v && "to" in v)
    return `${clock((v as { from: unknown }).from).slice(0, 5)}..${clock((v as { to: unknown }).to).slice(0, 5)}`;
  return JSON.stringify(v);
}

export function bytes(n: number): string {
  if (n < 1024) return `${n}B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.floor((ms % 60_000) / 1000)}s`;
}

const oneLine = (s: string) => s.replace(/\r?\n/g, "\\n");
