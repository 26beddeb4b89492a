import type { AuditEvent, Backup, Export, Job, Me, ScheduledBackup } from "./client.ts";

export type Format = "table" | "json";

/** Where results and progress go; a parameter so tests and the wait loop can swap it. */
export interface Io {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean };
}

/** JSON output is the API's body unchanged: what `curl | jq` would see. */
export function printJson(io: Io, value: unknown): void {
  io.out.write(JSON.stringify(value, null, 2) + "\n");
}

/** Columns padded to the widest cell; the last column is not padded. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** Key/value lines for one object. */
export function renderFields(fields: [string, string][]): string {
  const width = Math.max(...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${(k + ":").padEnd(width + 1)}  ${v}`).join("\n") + "\n";
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** `2026-11-26 02:15:00Z`: the RFC 3339 instant, easier to scan in a table. */
export const formatTime = (t: string | null): string => (t ? t.replace("T", " ").replace(/\.\d+Z$/, "Z") : "-");

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

const oneLine = (s: string | null, max = 60) => {
  if (!s) return "-";
  const flat = s.replace(/\s+/g, " ").trim();
  return flat.length > max ? flat.slice(0, max - 1) + "…" : flat;
};

export function backupsTable(backups: Backup[]): string {
  return renderTable(
    ["ID", "LABEL", "STATE", "VERIFICATION", "SIZE", "CREATED"],
    backups.map((b) => [
      b.id,
      b.label,
      b.state,
      b.verification_state,
      b.state === "completed" || b.size_bytes ? formatBytes(b.size_bytes) : "-",
      formatTime(b.created_at),
    ]),
  );
}

export function backupFields(b: Backup): string {
  return renderFields([
    ["Backup", b.id],
    ["Label", b.label],
    ["State", b.state],
    ["Verification", b.verification_state + (b.verified_at ? ` at ${formatTime(b.verified_at)}` : "")],
    ...(b.verification_error ? ([["Verification error", b.verification_error]] as [string, string][]) : []),
    ["Size", formatBytes(b.size_bytes)],
    ["Database", b.database_name],
    ["Created", formatTime(b.created_at)],
  ]);
}

export function jobsTable(jobs: Job[]): string {
  return renderTable(
    ["ID", "TYPE", "STATE", "ATTEMPTS", "CREATED", "ERROR"],
    jobs.map((j) => [j.id, j.type, j.state, `${j.attempts}/${j.max_attempts}`, formatTime(j.created_at), oneLine(j.error)]),
  );
}

/** Who did what: the actor as `kind:id`, the target as `type id`, and the metadata's set values in one line. */
export function auditTable(events: AuditEvent[], withProject: boolean): string {
  const headers = ["CREATED", "ACTION", "ACTOR", "TARGET", ...(withProject ? ["PROJECT"] : []), "DETAILS"];
  return renderTable(
    headers,
    events.map((e) => [
      formatTime(e.created_at),
      e.action,
      `${e.actor_kind}:${e.actor_id}`,
      `${e.target_type} ${e.target_id}`,
      ...(withProject ? [e.project_id ?? "-"] : []),
      oneLine(
        Object.entries(e.metadata)
          .filter(([, v]) => v !== e.target_id && v !== null)
          .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
          .join(" "),
        100,
      ),
    ]),
  );
}

export function jobFields(j: Job): string {
  const fields: [string, string][] = [
    ["Job", j.id],
    ["Type", j.type],
    ["State", j.state],
    ["Attempts", `${j.attempts}/${j.max_attempts}`],
    ["Project", j.project_id],
    ["Created", formatTime(j.created_at)],
    ["Started", formatTime(j.started_at)],
    ["Completed", formatTime(j.completed_at)],
  ];
  if (j.retry_classification) fields.push(["Retry class", j.retry_classification]);
  if (j.error) fields.push(["Error", j.error]);
  if (j.last_exit_code !== null) fields.push(["Last exit code", String(j.last_exit_code)]);
  if (j.last_stderr) fields.push(["Last stderr", oneLine(j.last_stderr, 200)]);
  return renderFields(fields);
}

const hhmm = (h: number, m: number) => `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`;

export function scheduleFields(s: ScheduledBackup): string {
  return renderFields([
    ["Schedule", `${s.label} (${s.id})`],
    ["Runs", `daily at ${hhmm(s.cron_hour, s.cron_minute)} UTC`],
    ["Active", s.is_active ? "yes" : "no (disabled)"],
    ["Retention", `${s.retention_days} day${s.retention_days === 1 ? "" : "s"}`],
    ["Last run", s.last_run_at ? `${formatTime(s.last_run_at)} (job ${s.last_job_id ?? "-"})` : "never"],
    ["Updated", formatTime(s.updated_at)],
  ]);
}

export function meFields(me: Me, apiUrl: string): string {
  const p = me.principal;
  return renderFields([
    ["API", apiUrl],
    ["Authenticated by", p.auth_source],
    ["Organization", `${me.organization.name} (${p.organization_id})`],
    [
      "Plan",
      `${me.organization.billing_plan}, ${me.organization.billing_status}${me.organization.suspended_at ? `, suspended since ${formatTime(me.organization.suspended_at)}` : ""}`,
    ],
    ["Project", p.project_id ?? "all projects of the organization"],
    ...(p.user_id ? ([["User", p.user_id]] as [string, string][]) : []),
    ["Admin", p.is_admin ? "yes" : "no"],
    ["Scopes", p.scopes.join(", ") || "-"],
  ]);
}

export function exportsTable(exports: Export[]): string {
  return renderTable(
    ["ID", "STATE", "SIZE", "CREATED", "EXPIRES"],
    exports.map((e) => [
      e.id,
      e.state,
      e.state === "completed" || e.size_bytes ? formatBytes(e.size_bytes) : "-",
      formatTime(e.created_at),
      formatTime(e.expires_at),
    ]),
  );
}

export function exportFields(e: Export): string {
  return renderFields([
    ["Export", e.id],
    ["State", e.state],
    ["Size", formatBytes(e.size_bytes)],
    ["Database", e.database_name],
    ["Created", formatTime(e.created_at)],
    ["Expires", formatTime(e.expires_at)],
  ]);
}

export function downloadedFields(d: { file: string; size_bytes: number; sha256: string }): string {
  return renderFields([
    ["File", d.file],
    ["Size", `${formatBytes(d.size_bytes)} (${d.size_bytes} bytes, as recorded)`],
    ["SHA-256", `${d.sha256} (matches)`],
  ]);
}
