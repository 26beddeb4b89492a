import { createWebhookEnv, createEndpointViaApi, fastDelivery, orgScopes, startReceiver, startWebhookLoops } from "./support.ts";
import type { TestEnv, Tenant } from "../support/env.ts";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { listDeliveries, sweepDueDeliveries } from "../../core/webhooks/deliveries.ts";
import { relayEvents } from "../../core/webhooks/relay.ts";
import { storedEvents } from "../support/events.ts";
import { postBackup, smallDatabase, waitFor } from "../worker/support.ts";

let env: TestEnv;
let tenant: Tenant;
let key: string;
beforeAll(async () => {
  env = await createWebhookEnv();
  tenant = await env.seedTenant({ database: await smallDatabase(env) });
  key = await tenant.key(orgScopes);
});
afterAll(async () => {
  await env?.cleanup();
});

describe("no event is lost to a crash", () => {
  it("a worker killed right after a backup completes: the event is delivered once the service runs again", async () => {
    // prepare
    const receiver = await startReceiver();
    await createEndpointViaApi(env, tenant, key, { url: receiver.url, event_types: ["backup.completed", "job.completed"] });
    const job = await postBackup(env, tenant);

    // act 1: a separate worker process completes the backup and dies at once (kill -9)
    const child = spawn(join(process.cwd(), "node_modules", ".bin", "tsx"), [join("test", "webhooks", "fixtures", "complete-then-die.ts")], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: `${join(process.cwd(), "node_modules", ".bin")}:${process.env.PATH ?? ""}`, ...env.serviceEnv(), LOG_LEVEL: "ERROR", JOB_ID: job.id },
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const exit = await new Promise<{ code: number | null; signal: string | null }>((r) => child.on("exit", (code, signal) => r({ code, signal })));
    // tsx's parent reports its child's SIGKILL as exit code 137 (128 + 9)
    expect(exit.signal === "SIGKILL" || exit.code === 137, `${JSON.stringify(exit)}: ${output}`).toBe(true);
    expect(output).not.toContain("survived");
    const completed = (await getJobItem(env.deps, job.id))!;
    expect(completed.state).toBe("completed");
    // nothing was sent, but both events are in the outbox, committed with the completion
    expect(receiver.requests).toHaveLength(0);
    const waiting = await storedEvents(env.deps, { field: "job_id", value: job.id });
    expect(waiting.map((e) => [e.type, e.relayed_at])).toEqual(
      [
        ["job.completed", null],
        ["backup.completed", null],
      ].sort((x, y) => (x[0]! < y[0]! ? -1 : 1)) as unknown as [string, null][],
    );

    // act 2: the service runs again
    const loops = startWebhookLoops(env);
    try {
      await waitFor("both events at the receiver", async () => receiver.requests.length >= 2 || undefined, 30_000);
    } finally {
      await loops.stop();
      await receiver.close();
    }
    // assess
    const types = receiver.requests.map((r) => JSON.parse(r.body) as { type: string; data: { backup_id?: string; job_id: string } });
    expect(types.map((t) => t.type).sort()).toEqual(["backup.completed", "job.completed"]);
    expect(types.find((t) => t.type === "backup.completed")!.data).toMatchObject({ job_id: job.id, backup_id: completed.backup_id });
  });

  it("a relay that dies between creating deliveries and sending them: the sweep sends them", async () => {
    // prepare: an empty outbox (whatever an earlier test left is relayed first), one new event
    await relayEvents(env.deps);
    const receiver = await startReceiver();
    const ep = await createEndpointViaApi(env, tenant, key, { url: receiver.url, event_types: ["job.failed"] });
    const { outboxPut } = await import("../../core/events/outbox.ts");
    const { transactWrite } = await import("../../core/db/store.ts");
    await transactWrite(env.deps, [
      outboxPut(env.deps, { type: "job.failed", organization_id: tenant.organizationId, project_id: tenant.projectId, data: { job_id: "job_lost" } }),
    ]);

    // act 1: the relay commits the deliveries, then its send fails (no deliveries queue reachable)
    const report = await relayEvents({ ...env.deps, deliveryQueueUrl: "http://127.0.0.1:9/000000000000/gone" });
    expect(report).toMatchObject({ events: 1, deliveries: 1, errors: 1 });
    const [pending] = (await listDeliveries(env.deps, ep.webhook_endpoint.id, 5)).items;
    expect(pending).toMatchObject({ state: "pending", attempts: 0 });
    // a second relay does not fan the event out again
    expect(await relayEvents(env.deps)).toMatchObject({ events: 0, deliveries: 0 });

    // act 2: the dispatcher's sweep finds the delivery due and unsent
    // (its clock a few seconds on: due times are stored to the second)
    const later = { ...env.deps, now: () => new Date(Date.now() + 3000) };
    expect(await sweepDueDeliveries(later, { graceMs: 0, limit: 100, concurrency: 4 })).toEqual({ sent: 1, errors: 0 });
    const loops = startWebhookLoops(env, fastDelivery);
    try {
      await waitFor("the swept delivery at the receiver", async () => receiver.requests.length >= 1 || undefined, 30_000);
    } finally {
      await loops.stop();
      await receiver.close();
    }
    expect(receiver.requests[0]!.headers["x-capydb-delivery"]).toBe(pending!.id);
    expect(JSON.parse(receiver.requests[0]!.body).data).toEqual({ job_id: "job_lost" });
  });
});
