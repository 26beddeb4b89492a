import { BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import { scheduleIndex, type ScheduleItem } from "../../core/backups/schedules.ts";
import { keys } from "../../core/db/keys.ts";
import type { Deps } from "../../core/deps.ts";
import { newId } from "../../core/ids.ts";
import type { Project } from "../../core/orgs/orgs.ts";
import type { TestEnv } from "../support/env.ts";

let seq = 0;
/** A project record written directly (no database needed: nothing here runs the worker). */
export function projectRecord(clusterId = "cls_test"): Project {
  seq++;
  return {
    type: "project",
    id: newId("project"),
    organization_id: "org_test",
    cluster_id: clusterId,
    name: `p${seq}`,
    database_name: `db_${seq}`,
    created_at: "2026-11-01T00:00:00Z",
  };
}

export function scheduleRecord(project: Project, hour: number, minute: number, active = true, updatedAt = "2026-11-01T00:00:00Z"): ScheduleItem {
  return {
    item_type: "schedule",
    id: newId("schedule"),
    organization_id: project.organization_id,
    project_id: project.id,
    label: "default",
    cron_hour: hour,
    cron_minute: minute,
    is_active: active,
    retention_days: 7,
    last_run_at: null,
    last_job_id: null,
    created_at: updatedAt,
    updated_at: updatedAt,
  };
}

export const records = (p: Project, s?: ScheduleItem): Record<string, unknown>[] => [
  { ...keys.project(p.id), ...p },
  ...(s ? [{ ...keys.schedule(p.id), ...s, ...(s.is_active ? scheduleIndex(s) : {}) }] : []),
];

/** BatchWrite, 25 items a request, 16 requests in flight. */
export async function writeAll(deps: Deps, items: Record<string, unknown>[]): Promise<void> {
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
  let next = 0;
  const lane = async () => {
    while (next < chunks.length) {
      let req: Record<string, { PutRequest: { Item: Record<string, unknown> } }[]> | undefined = {
        [deps.table]: chunks[next++]!.map((Item) => ({ PutRequest: { Item } })),
      };
      while (req && Object.keys(req).length) {
        const res = await deps.ddb.send(new BatchWriteCommand({ RequestItems: req }));
        req = res.UnprocessedItems as typeof req;
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, lane));
}

export async function seed(env: TestEnv, schedules: [hour: number, minute: number, active?: boolean, cluster?: string][]) {
  const out = schedules.map(([h, m, active, cluster]) => {
    const project = projectRecord(cluster);
    return { project, schedule: scheduleRecord(project, h, m, active ?? true) };
  });
  await writeAll(
    env.deps,
    out.flatMap((o) => records(o.project, o.schedule)),
  );
  return out;
}
