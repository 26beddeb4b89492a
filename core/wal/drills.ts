/**
 * The daily drill that proves a cluster's archive (issue 32, item 6): once a day per archived
 * cluster the dispatcher queues a `cluster.pitr_drill` job, the service's own (see
 * core/jobs/jobs.ts `isServiceJob`: in no customer's job list, lookup or webhook). The worker
 * restores a random time of the window in a recovery instance, copies a database out of it into
 * a scratch database on the verification cluster, checks it, drops it (core/worker/drill.ts) and
 * records the result here, one item per cluster (`CLS#<cls>` / `DRILL`). `GET .../pitr` shows it
 * as `last_drill`; the dispatcher publishes how many clusters' last drill failed (an alarm).
 */
import { z } from "../zod.ts";
import { keys } from "../db/keys.ts";
import { getItem, setFields, transactWriteIf, updateItemIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { newId } from "../ids.ts";
import { newJobItem, SERVICE_SCOPE, type JobItem } from "../jobs/jobs.ts";
import { enqueueJobs } from "../jobs/queue.ts";
import { errorText } from "../concurrency.ts";
import { listArchives, restorableWindow } from "./archive.ts";
import type { RestorableWindow } from "./window.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

/** `HH:MM` UTC after which each archived cluster's drill of the day is queued: after the daily base backup (04:00). */
export const DEFAULT_DRILL_AT = "06:00";

export const drillResultSchema = z.object({
  at: z.string(),
  restore_time: z.string(),
  ok: z.boolean(),
  seconds: z.number(),
  error: z.string().nullable(),
  job_id: z.string(),
  /** The database copied out and checked, and how many the instance opened. */
  database: z.string().nullable(),
  databases: z.number().int().nullable(),
  tables: z.number().int().nullable(),
  rows: z.number().int().nullable(),
  base_backup_id: z.string().nullable(),
  wal_segments: z.number().int().nullable(),
  /** Where the copy was checked: a scratch database on the verification cluster, or the instance itself when none is configured. */
  checked_on: z.enum(["verification_cluster", "recovery_instance"]).nullable(),
});
export type DrillResult = z.infer<typeof drillResultSchema>;

export const drillItemSchema = z.object({
  item_type: z.literal("pitr_drill"),
  cluster_id: z.string(),
  /** UTC day (YYYY-MM-DD) of the newest drill queued, and its job: one a day. */
  queued_for: z.string().nullable(),
  queued_job_id: z.string().nullable(),
  last: drillResultSchema.nullable(),
  updated_at: z.string(),
});
export type DrillItem = z.infer<typeof drillItemSchema>;

export async function getDrill(deps: Db, clusterId: string): Promise<DrillItem | undefined> {
  return getItem(deps, drillItemSchema, keys.pitrDrill(clusterId));
}

/** Records a drill's outcome as the cluster's last (a drill of an older job never overwrites a newer one's). */
export async function recordDrillResult(deps: Db, clusterId: string, result: DrillResult): Promise<void> {
  const set = setFields({ item_type: "pitr_drill", cluster_id: clusterId, last: result, updated_at: iso(deps.now()) });
  await updateItemIf(deps, drillItemSchema, {
    Key: keys.pitrDrill(clusterId),
    ...set,
    UpdateExpression: `${set.UpdateExpression}, queued_for = if_not_exists(queued_for, :null), queued_job_id = if_not_exists(queued_job_id, :null)`,
    ConditionExpression: "attribute_not_exists(#last) OR attribute_type(#last, :nulltype) OR #last.job_id <= :job",
    ExpressionAttributeNames: { ...set.ExpressionAttributeNames, "#last": "last" },
    ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":null": null, ":nulltype": "NULL", ":job": result.job_id },
  });
}

/**
 * A random time of the window, uniform over its covered stretches, and the base backup it
 * restores from; undefined when nothing is restorable. Not within a second of a stretch's ends.
 */
export function drillTime(window: Pick<RestorableWindow, "spans">, random: () => number = Math.random): Date | undefined {
  const spans = window.spans.map((s) => ({ from: Date.parse(s.from) + 1000, to: Date.parse(s.to) - 1000 })).filter((s) => s.to >= s.from);
  const total = spans.reduce((n, s) => n + (s.to - s.from), 0);
  if (!spans.length) return undefined;
  let at = random() * total;
  for (const s of spans) {
    if (at <= s.to - s.from) return new Date(Math.floor(s.from + at));
    at -= s.to - s.from;
  }
  return new Date(spans.at(-1)!.to);
}

const dayOf = (d: Date) => d.toISOString().slice(0, 10);

export interface DrillTickReport {
  /** Drills queued this tick. */
  queued: number;
  /** Archived clusters whose last drill failed (the alarm's figure). */
  failing: number;
}

/**
 * The dispatcher's daily rule: each enabled archive with a restorable window gets one drill job a
 * UTC day, once `at` has passed. The job and the day's mark commit together (a conditional write:
 * a double tick or two dispatchers queue one); the message is sent after, and a lost send is
 * recovered by the reaper as for every pending job. Also counts the clusters whose last drill failed.
 */
export async function queueDailyDrills(
  deps: Pick<Deps, "ddb" | "table" | "now" | "log" | "sqs" | "queueUrl">,
  at = DEFAULT_DRILL_AT,
): Promise<DrillTickReport> {
  const now = deps.now();
  const [hh, mm] = at.split(":").map(Number) as [number, number];
  const due = now >= new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), hh, mm));
  const day = dayOf(now);
  const report: DrillTickReport = { queued: 0, failing: 0 };
  const queued: string[] = [];
  for (const archive of await listArchives(deps)) {
    if (!archive.enabled) continue;
    const drill = await getDrill(deps, archive.cluster_id);
    if (drill?.last && !drill.last.ok) report.failing++;
    if (!due || drill?.queued_for === day) continue;
    try {
      if (!(await restorableWindow(deps, archive.cluster_id)).available) continue;
      const job = await createDrillJob(deps, archive.cluster_id, day, drill);
      if (job) queued.push(job.id);
    } catch (err) {
      deps.log.warn("could not queue the cluster's pitr drill; the next tick tries again", { cluster_id: archive.cluster_id, error: errorText(err) });
    }
  }
  report.queued = queued.length;
  if (queued.length) {
    // A failed send leaves the jobs pending: the reaper sends them again.
    await enqueueJobs(deps, queued).catch((err: unknown) => deps.log.warn("could not send the pitr drill jobs; the reaper will", { error: errorText(err) }));
    deps.log.info("pitr drills queued", { clusters: queued.length });
  }
  return report;
}

/** The drill job and the day's mark, in one transaction; undefined when another tick queued it. */
export async function createDrillJob(deps: Db, clusterId: string, day: string, drill?: DrillItem): Promise<JobItem | undefined> {
  const now = deps.now();
  const job = newJobItem(now, {
    id: newId("job", now),
    organization_id: SERVICE_SCOPE,
    project_id: SERVICE_SCOPE,
    cluster_id: clusterId,
    database_name: "",
    type: "cluster.pitr_drill",
    backup_id: null,
    // Two drills of one cluster never overlap; a customer's database lock is not taken.
    locked_resource: `pitr-drill:${clusterId}`,
  });
  const mark = {
    Update: {
      TableName: deps.table,
      Key: keys.pitrDrill(clusterId),
      UpdateExpression: "SET item_type = :t, cluster_id = :c, queued_for = :day, queued_job_id = :job, updated_at = :now, #last = if_not_exists(#last, :null)",
      ConditionExpression: drill
        ? "queued_for = :was OR attribute_not_exists(queued_for) OR attribute_type(queued_for, :nulltype)"
        : "attribute_not_exists(pk)",
      ExpressionAttributeNames: { "#last": "last" },
      ExpressionAttributeValues: {
        ":t": "pitr_drill",
        ":c": clusterId,
        ":day": day,
        ":job": job.id,
        ":now": iso(now),
        ":null": null,
        ...(drill ? { ":was": drill.queued_for ?? "", ":nulltype": "NULL" } : {}),
      },
    },
  };
  const done = await transactWriteIf(deps, [{ Put: { TableName: deps.table, Item: job, ConditionExpression: "attribute_not_exists(pk)" } }, mark]);
  return done ? job : undefined;
}
