/**
 * What a customer sees of their cluster's archive (GET /v1/projects/{projectID}/pitr, `capydb
 * pitr`, the console's timeline): SPEC section 7's shape, times to the second (the newest time
 * rounded down and the oldest up, so every time shown restores).
 */
import type { z } from "../zod.ts";
import type { pitrSchema } from "../contract/pitr.ts";
import type { Deps } from "../deps.ts";
import { restorableWindow } from "./archive.ts";
import { isUsable } from "./window.ts";
import { getDrill } from "./drills.ts";

export type Pitr = z.infer<typeof pitrSchema>;

const floorSecond = (t: string | null): string | null =>
  t === null ? null : new Date(Math.floor(Date.parse(t) / 1000) * 1000).toISOString().replace(/\.000Z$/, "Z");
const ceilSecond = (t: string | null): string | null =>
  t === null ? null : new Date(Math.ceil(Date.parse(t) / 1000) * 1000).toISOString().replace(/\.000Z$/, "Z");

/** The cluster's point-in-time view; `window_days` 0 and nothing available where it has no archive. */
export async function pitrView(deps: Pick<Deps, "ddb" | "table" | "now">, clusterId: string): Promise<Pitr> {
  const [w, drill] = await Promise.all([restorableWindow(deps, clusterId), getDrill(deps, clusterId)]);
  const last = drill?.last;
  const latest = floorSecond(w.latest_restore_time);
  return {
    available: w.available,
    window_days: w.archive?.enabled ? w.window_days : 0,
    earliest_restore_time: ceilSecond(w.earliest_restore_time),
    latest_restore_time: latest,
    lag_seconds: latest === null ? null : Math.max(0, Math.floor((deps.now().getTime() - Date.parse(latest)) / 1000)),
    base_backups: w.baseBackups
      .filter(isUsable)
      .map((b) => ({ id: b.id, started_at: b.started_at, finished_at: b.finished_at, size_bytes: b.size_bytes, verified_at: b.verified_at })),
    gaps: w.gaps.map((g) => ({ from: floorSecond(g.from), to: ceilSecond(g.to) })),
    last_drill: last ? { at: last.at, restore_time: last.restore_time, ok: last.ok, seconds: last.seconds, error: last.error } : null,
  };
}
