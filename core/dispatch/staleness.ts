import { z } from "../zod.ts";
import { listBackups } from "../backups/backups.ts";
import { keys } from "../db/keys.ts";
import { queryAll } from "../db/store.ts";
import type { Deps } from "../deps.ts";

/** A project with an active schedule whose newest verified backup is older than this is stale. */
export const STALE_AFTER_HOURS = 26;

const activeSchedule = z.object({ project_id: z.string(), created_at: z.string() });

export interface StalenessReport {
  /** Projects with an active schedule. */
  scheduled: number;
  /** Those whose newest verified backup (or, without one, the schedule itself) is older than 26 hours. */
  stale: string[];
}

/**
 * Backup staleness, the figure an operator alarms on: a daily schedule that has not produced a
 * verified backup for 26 hours (a day plus slack for the run and its verification) means backups
 * are silently not happening. A schedule younger than that is not stale for want of a backup yet.
 * Reads the active-schedule index once and each scheduled project's newest backups (one page).
 */
export async function findStaleProjects(
  deps: Pick<Deps, "ddb" | "table" | "now">,
  opts: { afterHours?: number; pageSize?: number } = {},
): Promise<StalenessReport> {
  const cutoff = deps.now().getTime() - (opts.afterHours ?? STALE_AFTER_HOURS) * 3_600_000;
  const schedules = await queryAll(deps, activeSchedule, {
    IndexName: "gsi2",
    KeyConditionExpression: "gsi2pk = :p",
    ExpressionAttributeValues: { ":p": keys.scheduleIndex },
  });
  const stale: string[] = [];
  for (const s of schedules) {
    const { items } = await listBackups(deps, s.project_id, opts.pageSize ?? 50);
    const newest = items.find((b) => b.state === "completed" && b.verification_state === "verified");
    const since = newest ? Date.parse(newest.verified_at ?? newest.created_at) : Date.parse(s.created_at);
    if (since < cutoff) stale.push(s.project_id);
  }
  return { scheduled: schedules.length, stale };
}
