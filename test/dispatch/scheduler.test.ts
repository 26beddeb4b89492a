import type { TestEnv } from "../support/env.ts";
import { DeleteCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { freshEnvs, receiveAll, tick as tickAt, withClock } from "./support.ts";
import { projectRecord, records, seed, writeAll } from "./seed.ts";
import { backupItem, getBackup } from "../../core/backups/backups.ts";
import { getSchedule, putSchedule } from "../../core/backups/schedules.ts";
import { keys } from "../../core/db/keys.ts";
import { queryAll } from "../../core/db/store.ts";
import { iso, type Deps } from "../../core/deps.ts";
import { runTick } from "../../core/dispatch/handler.ts";
import { jobItem, listJobs, type JobItem } from "../../core/jobs/jobs.ts";

const freshEnv = freshEnvs();

const at = (s: string) => new Date(s);
const tick = (env: TestEnv, when: string) => tickAt(env, at(when));

/** Counts the schedule items the dispatcher reads: every Query on the SCHED index, and any Scan. */
function countReads(deps: Deps) {
  const counter = { scheduleItems: 0, scheduleQueries: 0, scans: 0 };
  deps.ddb.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      if (context.commandName === "ScanCommand") counter.scans++;
      if (
        context.commandName === "QueryCommand" &&
        JSON.stringify((args.input as { ExpressionAttributeValues?: unknown }).ExpressionAttributeValues).includes(`"${keys.scheduleIndex}"`)
      ) {
        const o = out.output as { ScannedCount?: number; Count?: number };
        counter.scheduleQueries++;
        counter.scheduleItems += o.ScannedCount ?? o.Count ?? 0;
      }
      return out;
    },
    { step: "initialize", name: `countReads-${Math.random()}` },
  );
  return counter;
}

async function allJobs(deps: Deps): Promise<JobItem[]> {
  return queryAll(deps, jobItem, {
    IndexName: "gsi2",
    KeyConditionExpression: "gsi2pk = :p",
    ExpressionAttributeValues: { ":p": keys.jobStateIndex("pending") },
  });
}

describe("scheduled backups fire once a day at their minute", () => {
  it("a 02:15 schedule gets its job at the 02:15 tick, not at 02:16 nor any later tick that day, and again the next day", async () => {
    // prepare
    const env = await freshEnv();
    const [s] = await seed(env, [[2, 15]]);
    const { project, schedule } = s!;

    // act + assess
    for (const t of ["02:10", "02:13", "02:14"]) expect((await tick(env, `2026-11-26T${t}:00Z`)).schedules?.created).toBe(0);
    const fire = await tick(env, "2026-11-26T02:15:07Z");
    expect(fire.schedules).toMatchObject({ created: 1, read: 1, window: { from: "2026-11-26T02:14:00Z", to: "2026-11-26T02:15:00Z" } });
    const jobId = fire.schedules!.jobIds[0]!;

    const sch = await getSchedule(env.deps, project.id);
    expect(sch).toMatchObject({ last_job_id: jobId, last_run_at: "2026-11-26T02:15:07Z" });
    const jobs = (await listJobs(env.deps, project.id, 10)).items;
    expect(jobs.map((j) => [j.id, j.type, j.state, j.schedule_id])).toEqual([[jobId, "project.backup", "pending", schedule.id]]);
    const backup = await getBackup(env.deps, project.id, jobs[0]!.backup_id!);
    expect(backup).toMatchObject({ state: "pending", schedule_id: schedule.id, job_id: jobId, expires_at: "2026-12-03T02:15:07Z" });
    expect(await receiveAll(env.deps)).toEqual([jobId]);

    for (const t of ["02:15:40", "02:16:00", "02:17:00", "06:00:00", "14:15:00", "23:59:00"]) {
      expect((await tick(env, `2026-11-26T${t}Z`)).schedules?.created, t).toBe(0);
    }
    // Even with the watermark gone (a second, amnesiac dispatcher), the (schedule, date) guard holds.
    await env.deps.ddb.send(new DeleteCommand({ TableName: env.deps.table, Key: keys.dispatchWatermark }));
    const again = await tick(env, "2026-11-26T02:15:30Z");
    expect(again.schedules).toMatchObject({ read: 1, created: 0, alreadyRan: 1 });

    const nextDay = await tick(env, "2026-11-27T02:15:00Z");
    expect(nextDay.schedules?.created).toBe(1);
    expect((await listJobs(env.deps, project.id, 10)).items).toHaveLength(2);
  });

  it("an inactive schedule creates nothing and is not even read", async () => {
    const env = await freshEnv();
    const reads = countReads(env.deps);
    const [s] = await seed(env, [[2, 15, false]]);
    await tick(env, "2026-11-26T02:14:00Z");
    const r = await tick(env, "2026-11-26T02:15:00Z");
    expect(r.schedules).toMatchObject({ read: 0, created: 0 });
    expect(reads.scheduleItems).toBe(0);
    expect((await listJobs(env.deps, s!.project.id, 10)).items).toEqual([]);
  });

  it("a schedule deactivated through the API leaves the index; re-activated, it fires", async () => {
    const env = await freshEnv();
    const [s] = await seed(env, [[2, 15]]);
    const deps = withClock(env.deps, at("2026-11-25T10:00:00Z"));
    await putSchedule(deps, s!.project, { cron_hour: 2, cron_minute: 15, is_active: false });
    await tick(env, "2026-11-26T02:14:00Z");
    expect((await tick(env, "2026-11-26T02:15:00Z")).schedules?.created).toBe(0);
    await putSchedule(deps, s!.project, { cron_hour: 2, cron_minute: 15, is_active: true });
    expect((await tick(env, "2026-11-27T02:15:00Z")).schedules?.created).toBe(1);
  });

  it("five dispatchers ticking at once create one job per schedule", async () => {
    const env = await freshEnv();
    const seeded = await seed(env, [
      [2, 15],
      [2, 15],
      [2, 15, true, "cls_b"],
    ]);
    await tick(env, "2026-11-26T02:14:00Z");

    const reports = await Promise.all(Array.from({ length: 5 }, () => runTick(withClock(env.deps, at("2026-11-26T02:15:00Z")))));

    expect(reports.flatMap((r) => r.errors)).toEqual([]);
    expect(reports.reduce((n, r) => n + (r.schedules?.created ?? 0), 0)).toBe(3);
    const jobs = await allJobs(env.deps);
    expect(jobs.map((j) => j.schedule_id).sort()).toEqual(seeded.map((s) => s.schedule.id).sort());
    for (const s of seeded) expect((await getSchedule(env.deps, s.project.id))?.last_job_id).toBe(jobs.find((j) => j.schedule_id === s.schedule.id)?.id);
  });

  it("a schedule moved to a later minute after it ran today does not run again today", async () => {
    const env = await freshEnv();
    const [s] = await seed(env, [[2, 15]]);
    await tick(env, "2026-11-26T02:14:00Z");
    expect((await tick(env, "2026-11-26T02:15:00Z")).schedules?.created).toBe(1);

    await putSchedule(withClock(env.deps, at("2026-11-26T02:30:00Z")), s!.project, { cron_hour: 3, cron_minute: 0, is_active: true });
    const r = await tick(env, "2026-11-26T03:00:00Z");
    expect(r.schedules).toMatchObject({ read: 1, created: 0, alreadyRan: 1 });
    expect((await tick(env, "2026-11-27T03:00:00Z")).schedules?.created).toBe(1);
    expect((await listJobs(env.deps, s!.project.id, 10)).items).toHaveLength(2);
  });

  it("a schedule created after its minute passed waits for tomorrow, even when a catch-up window covers that minute", async () => {
    const env = await freshEnv();
    const project = projectRecord();
    await writeAll(env.deps, records(project));
    await tick(env, "2026-11-26T01:59:00Z");
    // During an outage of the ticker, the API creates a 02:30 schedule at 04:00.
    await putSchedule(withClock(env.deps, at("2026-11-26T04:00:00Z")), project, { cron_hour: 2, cron_minute: 30, is_active: true });
    const r = await tick(env, "2026-11-26T05:00:00Z");
    expect(r.schedules).toMatchObject({ read: 1, created: 0, skipped: 1 });
    expect((await tick(env, "2026-11-27T02:30:00Z")).schedules?.created).toBe(1);
  });
});

describe("catch-up after an outage", () => {
  it("no tick from 02:00 to 05:00: exactly one job per missed schedule, spread per cluster, and nothing more after", async () => {
    // prepare: schedules inside the outage on two clusters, and some outside it
    const env = await freshEnv();
    const inside: [number, number, boolean, string][] = [
      [2, 0, true, "cls_a"],
      [2, 30, true, "cls_a"],
      [3, 45, true, "cls_a"],
      [4, 59, true, "cls_a"],
      [2, 30, true, "cls_b"],
      [4, 0, true, "cls_b"],
      [3, 0, false, "cls_b"], // inactive
    ];
    const outside: [number, number, boolean, string][] = [
      [1, 30, true, "cls_a"],
      [5, 1, true, "cls_a"],
      [23, 0, true, "cls_b"],
    ];
    const seeded = await seed(env, [...inside, ...outside]);
    const missed = seeded.filter((s) => s.schedule.is_active && s.schedule.cron_hour >= 2 && s.schedule.cron_hour < 5);
    await tick(env, "2026-11-26T01:59:00Z");

    // act: the ticker is down until 05:00 (the 05:00 tick includes its own minute: nothing is due at 05:00)
    const r = await tick(env, "2026-11-26T05:00:00Z");

    // assess
    expect(r.schedules).toMatchObject({ window: { from: "2026-11-26T01:59:00Z", to: "2026-11-26T05:00:00Z" }, read: 6, created: 6, alreadyRan: 0 });
    const jobs = await allJobs(env.deps);
    expect(jobs.map((j) => j.schedule_id).sort()).toEqual(missed.map((s) => s.schedule.id).sort());
    const delays = (cluster: string) =>
      jobs
        .filter((j) => j.cluster_id === cluster)
        .map((j) => (Date.parse(j.available_at!) - Date.parse("2026-11-26T05:00:00Z")) / 1000)
        .sort((a, b) => a - b);
    expect(delays("cls_a")).toEqual([0, 30, 60, 90]);
    expect(delays("cls_b")).toEqual([0, 30]);
    // The earliest missed run of a cluster starts first.
    const first = jobs.find((j) => j.cluster_id === "cls_a" && j.available_at === "2026-11-26T05:00:00Z");
    expect(first?.schedule_id).toBe(missed.find((s) => s.schedule.cron_hour === 2 && s.schedule.cron_minute === 0)?.schedule.id);
    // Only the first start of each cluster is visible at once; the others are delayed messages.
    expect((await receiveAll(env.deps)).length).toBe(2);

    for (const t of ["05:00:30", "05:01:00", "05:02:00"]) {
      const later = await tick(env, `2026-11-26T${t}Z`);
      expect(later.schedules?.created ?? 0, t).toBe(t === "05:01:00" ? 1 : 0); // the 05:01 schedule, on time
    }
    expect(await allJobs(env.deps)).toHaveLength(7);
  });

  it("a cluster with more catch-up runs than SQS can delay: the later starts wait pending and the reaper sends them when due", async () => {
    const env = await freshEnv();
    await seed(
      env,
      Array.from({ length: 35 }, () => [3, 0, true, "cls_big"] as [number, number, boolean, string]),
    );
    await tick(env, "2026-11-26T01:59:00Z");
    const r = await tick(env, "2026-11-26T05:00:00Z");
    // 30 s apart: starts at 0..1020 s; SQS delays up to 900 s (31 of them), 4 are deferred.
    expect(r.schedules).toMatchObject({ created: 35, deferred: 4 });
    const deferred = (await allJobs(env.deps)).filter((j) => Date.parse(j.available_at!) > Date.parse("2026-11-26T05:15:00Z")).map((j) => j.id);
    expect(deferred).toHaveLength(4);
    await receiveAll(env.deps);

    // Due at 05:15:30, 05:16:00, 05:16:30, 05:17:00; sent once unclaimed for the 2-minute grace.
    const early = await tick(env, "2026-11-26T05:18:00Z");
    expect(early.reaper?.jobIds.filter((id) => deferred.includes(id))).toHaveLength(1);
    const late = await tick(env, "2026-11-26T05:19:01Z");
    expect(late.reaper?.jobIds.filter((id) => deferred.includes(id))).toHaveLength(3);
  });

  it("an outage longer than a day still yields one job per schedule (the look-back is one day)", async () => {
    const env = await freshEnv();
    const seeded = await seed(env, [
      [2, 30],
      [3, 30],
      [12, 0],
    ]);
    await tick(env, "2026-11-25T02:00:00Z");
    const r = await tick(env, "2026-11-26T03:00:00Z");
    expect(r.schedules).toMatchObject({ window: { from: "2026-11-25T03:00:00Z", to: "2026-11-26T03:00:00Z" }, created: 3 });
    const jobs = await allJobs(env.deps);
    expect(jobs).toHaveLength(3);
    const backups = await Promise.all(jobs.map((j) => getBackup(env.deps, j.project_id, j.backup_id!)));
    expect(backups.every((b) => b?.schedule_id)).toBe(true);
    expect(seeded).toHaveLength(3);
  });

  it("a window across midnight reads both ends of the day and dates each run by its own day", async () => {
    const env = await freshEnv();
    const reads = countReads(env.deps);
    const seeded = await seed(env, [
      [23, 58],
      [23, 59],
      [0, 0],
      [0, 2],
      [0, 3],
      [12, 0],
    ]);
    await tick(env, "2026-11-26T23:58:00Z"); // a first tick covers its own minute: the 23:58 schedule runs here
    reads.scheduleItems = 0;
    const r = await tick(env, "2026-11-27T00:02:30Z");
    expect(r.schedules).toMatchObject({ read: 3, created: 3 });
    expect(reads.scheduleItems).toBe(3);
    const ran = seeded.filter(
      (s) => (s.schedule.cron_hour === 23 && s.schedule.cron_minute === 59) || (s.schedule.cron_hour === 0 && s.schedule.cron_minute <= 2),
    );
    const jobs = (await allJobs(env.deps)).filter((j) => r.schedules!.jobIds.includes(j.id));
    expect(jobs.map((j) => j.schedule_id).sort()).toEqual(ran.map((s) => s.schedule.id).sort());
    // The 23:59 run belongs to the 26th: at 23:59 on the 27th it must not be blocked, and it runs.
    await tick(env, "2026-11-27T23:58:00Z");
    const late = await tick(env, "2026-11-27T23:59:00Z");
    expect(late.schedules?.created).toBe(1);
  });
});

describe("cost grows with what is due", () => {
  it("10,000 active schedules, 3 due: the tick reads 3 schedule items and never scans", async () => {
    // prepare: 9,997 schedules at other minutes, 3 at 02:15; written directly, 25 per request
    const env = await freshEnv();
    const seededAt = Date.now();
    const spec: [number, number][] = [];
    for (let i = 0; spec.length < 9_997; i++) {
      const minuteOfDay = i % 1440;
      if (minuteOfDay === 2 * 60 + 15) continue;
      spec.push([Math.floor(minuteOfDay / 60), minuteOfDay % 60]);
    }
    spec.push([2, 15], [2, 15], [2, 15]);
    await seed(env, spec);
    const seedMs = Date.now() - seededAt;
    await tick(env, "2026-11-26T02:14:00Z");
    const reads = countReads(env.deps);

    // act
    const started = Date.now();
    const r = await tick(env, "2026-11-26T02:15:00Z");
    const tickMs = Date.now() - started;

    // assess
    expect(r.schedules).toMatchObject({ read: 3, created: 3 });
    expect(reads.scheduleItems).toBe(3);
    expect(reads.scans).toBe(0);
    console.info(
      `10,000 schedules: seeded in ${seedMs} ms; due tick read ${reads.scheduleItems} schedule items in ${reads.scheduleQueries} query, ${tickMs} ms`,
    );
  }, 180_000);
});

describe("what a scheduled run writes", () => {
  it("the backup and job carry the project's cluster and database and the schedule's retention", async () => {
    const env = await freshEnv();
    const [s] = await seed(env, [[7, 0, true, "cls_z"]]);
    await tick(env, "2026-11-26T06:59:00Z");
    const r = await tick(env, "2026-11-26T07:00:00Z");
    const [job] = await allJobs(env.deps);
    expect(job).toMatchObject({ id: r.schedules!.jobIds[0], cluster_id: "cls_z", database_name: s!.project.database_name, attempts: 0, max_attempts: 3 });
    const backups = await queryAll(env.deps, backupItem, {
      KeyConditionExpression: "pk = :p AND begins_with(sk, :b)",
      ExpressionAttributeValues: { ":p": keys.project(s!.project.id).pk, ":b": keys.backupPrefix },
    });
    expect(backups).toHaveLength(1);
    expect(backups[0]).toMatchObject({ label: "default", created_at: iso(at("2026-11-26T07:00:00Z")), expires_at: "2026-12-03T07:00:00Z" });
  });
});
