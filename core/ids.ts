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
