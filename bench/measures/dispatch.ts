import { DynamoDBClient, DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { BatchWriteCommand, DeleteCommand } from "@aws-sdk/lib-dynamodb";
import { scheduleIndex, type ScheduleItem } from "../../core/backups/schedules.ts";
import { keys } from "../../core/db/keys.ts";
import { iso, type Deps } from "../../core/deps.ts";
import { createDispatchHandler, type TickReport } from "../../core/dispatch/handler.ts";
import { newId } from "../../core/ids.ts";
import { createCluster, createOrganization, createProject } from "../../core/orgs/orgs.ts";
import { ensureTable } from "../../local/resources.ts";
import { localCredentials, LOCAL_REGION } from "../../local/stack.ts";
import { countDdb, type DdbCounter } from "../lib/ddb-counter.ts";
import type { BenchContext, Check, MeasureResult } from "../lib/context.ts";
import { median, pool, round, sleep } from "../lib/stats.ts";

const DUE = 10;
/** Ticks per table; the first is a warm-up and not counted. */
const REPS = 6;
const DAY = Date.UTC(2031, 0, 15);
/** Minute of the day whose 10 schedules tick r finds due: 12:05, 12:04, ... 12:00. */
const dueMinute = (r: number) => 12 * 60 + (REPS - 1 - r);
/**
 * Tick r runs 30 s into its minute. Time runs backwards from tick to tick (the watermark is
 * deleted before each), so the jobs earlier ticks created are never "due" for a later tick's
 * reaper: every tick does the same work.
 */
const tickAt = (r: number) => new Date(DAY + dueMinute(r) * 60_000 + 30_000);

interface TickRun {
  ms: number;
  ddbCalls: number;
  itemsRead: number;
  scheduleItemsRead: number;
  created: number;
  byOp: Record<string, { calls: number; items: number }>;
}

async function batchWrite(deps: Deps, items: Record<string, unknown>[]): Promise<void> {
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
  await pool(chunks, 8, async (chunk) => {
    let request: Record<string, { PutRequest: { Item: Record<string, unknown> } }[]> = {
      [deps.table]: chunk.map((Item) => ({ PutRequest: { Item } })),
    };
    for (let attempt = 0; Object.keys(request).length > 0; attempt++) {
      const res = await deps.ddb.send(new BatchWriteCommand({ RequestItems: request }));
      request = (res.UnprocessedItems ?? {}) as typeof request;
      if (Object.keys(request).length > 0) await sleep(Math.min(1000, 20 * 2 ** attempt));
    }
  });
}

function schedule(projectId: string, orgId: string, hour: number, minute: number, now: Date): Record<string, unknown> {
  const item: ScheduleItem = {
    item_type: "schedule",
    id: newId("schedule", now),
    organization_id: orgId,
    project_id: projectId,
    label: "default",
    cron_hour: hour,
    cron_minute: minute,
    is_active: true,
    retention_days: 14,
    last_run_at: null,
    last_job_id: null,
    created_at: iso(now),
    updated_at: iso(now),
  };
  return { ...keys.schedule(projectId), ...item, ...scheduleIndex(item) };
}

/**
 * A table with `total` active schedules: 10 due at each tick's minute (real projects, so the tick
 * does its whole work for them), the rest spread over the other minutes of the day (projects that
 * are never read). Returns the Deps on that table.
 */
async function seed(ctx: BenchContext, total: number): Promise<Deps> {
  const table = `bench-dispatch-${total}-${Date.now().toString(36)}`;
  const raw = new DynamoDBClient({ region: LOCAL_REGION, endpoint: ctx.infra.endpoint, credentials: localCredentials });
  await ensureTable(raw, table);
  raw.destroy();
  const deps: Deps = { ...ctx.deps, table };
  const created = new Date(DAY - 86_400_000);
  const org = await createOrganization(deps, { name: `bench-dispatch-${total}` });
  const cluster = await createCluster(deps, { name: `bench-dispatch-${total}`, url: ctx.infra.postgres.url, insecure_tls: true });
  const items: Record<string, unknown>[] = [];
  for (let r = 0; r < REPS; r++) {
    for (let i = 0; i < DUE; i++) {
      const p = await createProject(deps, { organization_id: org.id, cluster_id: cluster.id, name: `due-${r}-${i}`, database_name: "postgres" });
      items.push(schedule(p.id, org.id, Math.floor(dueMinute(r) / 60), dueMinute(r) % 60, created));
    }
  }
  const dueMinutes = new Set(Array.from({ length: REPS }, (_, r) => dueMinute(r)));
  const otherMinutes = Array.from({ length: 1440 }, (_, m) => m).filter((m) => !dueMinutes.has(m));
  for (let i = items.length; i < total; i++) {
    const m = otherMinutes[i % otherMinutes.length]!;
    items.push(schedule(newId("project", created), org.id, Math.floor(m / 60), m % 60, created));
  }
  await batchWrite(deps, items);
  return deps;
}

async function tick(deps: Deps, counter: DdbCounter, r: number): Promise<TickRun> {
  // Every tick starts with no watermark, so it covers its own minute only (like a first tick).
  await deps.ddb.send(new DeleteCommand({ TableName: deps.table, Key: keys.dispatchWatermark }));
  const at = tickAt(r);
  const handler = createDispatchHandler({ ...deps, now: () => at });
  counter.reset();
  const t0 = performance.now();
  const report: TickReport = await handler();
  const ms = performance.now() - t0;
  const s = counter.snapshot();
  return {
    ms,
    ddbCalls: s.calls,
    itemsRead: s.scanned,
    scheduleItemsRead: report.schedules?.read ?? -1,
    created: report.schedules?.created ?? -1,
    byOp: s.byOp,
  };
}

export async function measureDispatch(ctx: BenchContext): Promise<MeasureResult> {
  const sizes = ctx.quick ? [1_000, 10_000] : [1_000, 100_000];
  const counter = countDdb(ctx.deps.ddb);
  const out: Record<number, { seedS: number; ticks: TickRun[] }> = {};
  const tables: string[] = [];
  try {
    const tableOf: Record<number, Deps> = {};
    for (const n of sizes) {
      ctx.log(`dispatch: seeding ${n.toLocaleString("en")} active schedules (BatchWrite)`);
      const t = performance.now();
      const deps = await seed(ctx, n);
      tables.push(deps.table);
      tableOf[n] = deps;
      out[n] = { seedS: (performance.now() - t) / 1000, ticks: [] };
    }
    // Interleaved (small, large, small, ...), so drift in the machine's load hits both alike.
    for (let r = 0; r < REPS; r++) {
      for (const n of sizes) {
        const run = await tick(tableOf[n]!, counter, r);
        out[n]!.ticks.push(run);
        ctx.log(
          `dispatch: ${n} schedules, tick ${r === 0 ? "0 (warm-up)" : r}: ${round(run.ms, 1)} ms, ${run.scheduleItemsRead} schedule items, ${run.itemsRead} items read in ${run.ddbCalls} calls, ${run.created} jobs`,
        );
      }
    }
  } finally {
    counter.reset();
    const raw = new DynamoDBClient({ region: LOCAL_REGION, endpoint: ctx.infra.endpoint, credentials: localCredentials });
    for (const t of tables) await raw.send(new DeleteTableCommand({ TableName: t })).catch(() => undefined);
    raw.destroy();
  }
  const [small, large] = sizes as [number, number];
  const summary = (n: number) => {
    const ticks = out[n]!.ticks.slice(1); // the first tick warms up
    return {
      schedules: n,
      due: DUE,
      seed_s: round(out[n]!.seedS, 1),
      tick_ms: ticks.map((t) => round(t.ms, 1)),
      tick_median_ms: round(median(ticks.map((t) => t.ms)), 1),
      schedule_items_read: Math.max(...ticks.map((t) => t.scheduleItemsRead)),
      items_read: Math.max(...ticks.map((t) => t.itemsRead)),
      ddb_calls: Math.max(...ticks.map((t) => t.ddbCalls)),
      jobs_created: ticks.map((t) => t.created),
      by_op_last_tick: ticks.at(-1)!.byOp,
    };
  };
  const s = summary(small);
  const l = summary(large);
  const ratio = l.tick_median_ms / s.tick_median_ms;
  const checks: Check[] = [
    {
      key: "dispatch.items_read",
      value: l.schedule_items_read,
      target: `== ${DUE} (due schedules only)`,
      pass: l.schedule_items_read === DUE && s.schedule_items_read === DUE,
    },
    { key: "dispatch.ratio", value: round(ratio, 3), target: "<= 1.5", pass: ratio <= 1.5 },
    {
      key: "dispatch.jobs_created",
      value: Math.min(...l.jobs_created, ...s.jobs_created),
      target: `== ${DUE} per tick`,
      pass: [...l.jobs_created, ...s.jobs_created].every((c) => c === DUE),
    },
  ];
  const pf = (c: Check) => (c.pass ? "PASS" : "FAIL");
  return {
    figures: {
      dispatch: {
        items_read: l.schedule_items_read,
        items_read_all_ops: l.items_read,
        ratio: round(ratio, 3),
        [`s${small}`]: s,
        [`s${large}`]: l,
      },
    },
    checks,
    rows: [
      [
        `dispatch tick ${large.toLocaleString("en")}`,
        `${l.tick_median_ms} ms`,
        `${small.toLocaleString("en")}: ${s.tick_median_ms} ms`,
        `${round(ratio, 2)}x`,
        "<= 1.5x",
        pf(checks[1]!),
      ],
      [
        "dispatch items read",
        `${l.schedule_items_read} schedules (${l.items_read} items, ${l.ddb_calls} calls in all)`,
        `${s.schedule_items_read} schedules (${s.items_read} items)`,
        "",
        `== ${DUE} due`,
        pf(checks[0]!),
      ],
      ["dispatch jobs created", `${l.jobs_created.join("/")}`, `${s.jobs_created.join("/")}`, "", `${DUE} per tick`, pf(checks[2]!)],
    ],
  };
}
