import { monotonicFactory } from "ulid";

const ulid = monotonicFactory();

export const idPrefixes = {
  organization: "org",
  cluster: "cls",
  project: "prj",
  apiKey: "key",
  backup: "bkp",
  schedule: "sch",
  job: "job",
  event: "evt",
  audit: "aud",
  approval: "apv",
  export: "exp",
  preview: "pvw",
  restorePoint: "rpt",
  webhookEndpoint: "whe",
  webhookDelivery: "whd",
  baseBackup: "bbk",
  walGap: "gap",
  cliLoginSession: "cli",
} as const;
export type IdKind = keyof typeof idPrefixes;

/**
 * A new sortable id (`bkp_01J...`): the ULID sorts by creation time, so newest-first listing is a
 * plain Query with ScanIndexForward false.
 */
export function newId(kind: IdKind, at: Date = new Date()): string {
  return `${idPrefixes[kind]}_${ulid(at.getTime()).toLowerCase()}`;
}

/** True when `id` looks like an id of this kind (shape only). */
export function isId(kind: IdKind, id: string): boolean {
  return new RegExp(`^${idPrefixes[kind]}_[0-9a-hjkmnp-tv-z]{26}$`).test(id);
}

const kindNames: Record<IdKind, string> = {
  organization: "an organization",
  cluster: "a cluster",
  project: "a project",
  apiKey: "an API key",
  backup: "a backup",
  schedule: "a schedule",
  job: "a job",
  event: "an event",
  audit: "an audit event",
  approval: "an approval",
  export: "an export",
  preview: "a preview database",
  restorePoint: "a restore point",
  webhookEndpoint: "a webhook endpoint",
  webhookDelivery: "a webhook delivery",
  baseBackup: "a base backup",
  walGap: "a WAL gap",
  cliLoginSession: "a CLI login session",
};

/** `must be a project id (prj_ and 26 characters), got "xyz"`: what was expected and what was sent, shortened. */
export function idMismatch(kind: IdKind, value: unknown): string {
  const shown = typeof value === "string" ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value) : value === null ? "null" : typeof value;
  const sent = typeof value === "string" && value.length > 40 ? `${shown} (${value.length} characters)` : shown;
  return `must be ${kindNames[kind]} id (${idPrefixes[kind]}_ and 26 characters), got ${sent}`;
}
