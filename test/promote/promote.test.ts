import { createTestEnv, type TestEnv } from "../support/env.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listProjectAuditEvents } from "../../core/audit/audit.ts";
import { getBackup } from "../../core/backups/backups.ts";
import { getPreview, previewPassword } from "../../core/previews/previews.ts";
import { storedEvents } from "../support/events.ts";
import { expectShape } from "../support/spec.ts";
import { runQueueUntilSettled } from "../worker/support.ts";
import {
  allowsConnections,
  appProject,
  approval,
  as,
  changedPreview,
  existing,
  hashesAs,
  hashesOf,
  jobOf,
  promoteRequest,
  promotionOf,
  rowHashes,
  verifiedBackup,
} from "./support.ts";

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.cleanup();
});

describe("POST /v1/preview-databases/{previewID}/promote", () => {
  it("puts the preview's data into the project's database after a verified safety backup; a connected client is ended and reconnects to the new data; the old data is a pre-promote preview; promoting that back restores the original exactly", async () => {
    // prepare: the application's project, a verified backup, a preview restored from it and changed
    const p = await appProject(env);
    const backup = await verifiedBackup(env, p.tenant);
    const preview = await changedPreview(env, p, backup);
    const oldHashes = await hashesOf(env, p.database);
    const newHashes = await hashesOf(env, preview.database_name);
    expect(newHashes).not.toEqual(oldHashes);
    const key = await p.tenant.key(["projects:write", "projects:read", "jobs:read"]);
    const client = as(env, p.role, p.database);
    await client.connect();
    expect(await rowHashes(client)).toEqual(oldHashes);

    // act: promote with an approval, and let the worker run it (and its safety backup)
    const token = await approval(env, p.tenant.projectId, p.tenant.organizationId);
    const { res, json } = await promoteRequest(env, key, preview.id, token);
    expect(res.status, JSON.stringify(json)).toBe(202);
    expectShape("Job", json.job, expect);
    expect(json.job).toMatchObject({ type: "project.promote_preview", state: "pending", preview_database_id: preview.id, project_id: p.tenant.projectId });
    const [done] = await runQueueUntilSettled(env.deps, [json.job.id]);

    // assess: the job, its safety backup, the swap, the parked preview, the audit trail
    expect(done, JSON.stringify(done)).toMatchObject({ state: "completed", error: null });
    expect(done!.last_stdout).toMatch(
      /safety backup bkp_\w+ requested[\s\S]*safety backup bkp_\w+ verified[\s\S]*swapped[\s\S]*done: undo by promoting preview pvw_/,
    );
    const promotion = await promotionOf(env, done!.id);
    expect(promotion.phase).toBe("done");
    expect(done!.backup_id).toBe(promotion.safety_backup_id);
    const safety = await getBackup(env.deps, p.tenant.projectId, promotion.safety_backup_id);
    expect(safety, JSON.stringify(safety)).toMatchObject({ state: "completed", verification_state: "verified" });
    expect(safety!.row_counts).toMatchObject({ "public.orders": 400, "public.customers": 50 });

    const ended = await client.query("SELECT 1").then(
      () => "still connected",
      (e: { code?: string; message: string }) => e.code ?? e.message,
    );
    expect(ended).not.toBe("still connected");
    await client.end().catch(() => undefined);
    expect(await hashesAs(env, p.role, p.database)).toEqual(newHashes);
    const again = as(env, p.role, p.database);
    await again.connect();
    await again.query("INSERT INTO customers (name) VALUES ('written by the app after the promote')");
    const [owner] = (await again.query<{ o: string }>("SELECT tableowner AS o FROM pg_tables WHERE tablename = 'orders'")).rows;
    expect(owner!.o).toBe(p.role);
    await again.end();
    await env.query(p.database, "DELETE FROM customers WHERE name = 'written by the app after the promote'");

    const parked = (await getPreview(env.deps, promotion.parked_preview_id))!;
    expect(parked, JSON.stringify(parked)).toMatchObject({ state: "ready", project_id: p.tenant.projectId, source_backup_id: promotion.safety_backup_id });
    expect(parked.name).toMatch(/^pre-promote-\d{4}-\d{2}-\d{2}-\d{6}$/);
    const ttlHours = (Date.parse(parked.expires_at) - Date.now()) / 3600_000;
    expect(ttlHours).toBeGreaterThan(23);
    expect(ttlHours).toBeLessThanOrEqual(24);
    expect(await hashesAs(env, parked.role_name, parked.database_name, previewPassword(env.deps, parked))).toEqual(oldHashes);
    expect(await getPreview(env.deps, preview.id)).toMatchObject({ state: "deleted" });
    expect(await existing(env, [preview.database_name])).toEqual([]);
    // Webhook subscribers hear both record changes once: the parked preview ready, the promoted one gone.
    const parkedReady = await storedEvents(env.deps, { type: "preview.ready", field: "preview_id", value: parked.id });
    expect(parkedReady.map((e) => e.event.data)).toEqual([expect.objectContaining({ job_id: done!.id, name: parked.name, expires_at: parked.expires_at })]);
    const promotedGone = await storedEvents(env.deps, { type: "preview.deleted", field: "preview_id", value: preview.id });
    expect(promotedGone.map((e) => e.event.data)).toEqual([expect.objectContaining({ job_id: done!.id, state: "deleted" })]);

    const events = (await listProjectAuditEvents(env.deps, p.tenant.projectId, 50)).items;
    const requested = events.find((e) => e.action === "preview.promote_requested");
    expect(requested, JSON.stringify(events.map((e) => e.action))).toMatchObject({
      actor_kind: "api_key",
      target_type: "preview",
      target_id: preview.id,
      metadata: { job_id: done!.id, safety_backup_id: promotion.safety_backup_id },
    });
    expect(events.find((e) => e.action === "approval.used")).toMatchObject({
      actor_kind: "api_key",
      metadata: { approved_by_actor_kind: "operator", used_for_target_id: done!.id },
    });
    expect(events.find((e) => e.action === "preview.promoted")).toMatchObject({
      actor_kind: "system",
      actor_id: done!.id,
      metadata: { job_id: done!.id, safety_backup_id: promotion.safety_backup_id, pre_promote_preview_id: parked.id, preview_id: preview.id },
    });
    expect(events.find((e) => e.action === "backup.requested" && e.target_id === promotion.safety_backup_id)).toMatchObject({
      actor_kind: "system",
      actor_id: done!.id,
    });

    // act 2: undo, by promoting the pre-promote preview back
    const undoToken = await approval(env, p.tenant.projectId, p.tenant.organizationId);
    const undo = await promoteRequest(env, key, parked.id, undoToken);
    expect(undo.res.status, JSON.stringify(undo.json)).toBe(202);
    const [undone] = await runQueueUntilSettled(env.deps, [undo.json.job.id]);
    expect(undone, JSON.stringify(undone)).toMatchObject({ state: "completed" });
    expect(await hashesAs(env, p.role, p.database)).toEqual(oldHashes);
    const second = await promotionOf(env, undone!.id);
    const parkedAgain = (await getPreview(env.deps, second.parked_preview_id))!;
    expect(await hashesAs(env, parkedAgain.role_name, parkedAgain.database_name, previewPassword(env.deps, parkedAgain))).toEqual(newHashes);
  }, 240_000);
});

describe("a promote that fails before the rename", () => {
  it("leaves the project's database untouched and accepting connections, says what failed, and leaves no pre-promote preview or role behind", async () => {
    // prepare: a preview whose database disappears (dropped behind the service's back) before the swap
    const p = await appProject(env);
    const backup = await verifiedBackup(env, p.tenant);
    const preview = await changedPreview(env, p, backup);
    const oldHashes = await hashesOf(env, p.database);
    const key = await p.tenant.key(["projects:write"]);
    const { res, json } = await promoteRequest(env, key, preview.id, await approval(env, p.tenant.projectId, p.tenant.organizationId));
    expect(res.status, JSON.stringify(json)).toBe(202);
    await env.query("postgres", `DROP DATABASE ${preview.database_name} WITH (FORCE)`);

    // act
    const [failed] = await runQueueUntilSettled(env.deps, [json.job.id]);

    // assess
    expect(failed, JSON.stringify(failed)).toMatchObject({ state: "failed", retry_classification: "permanent" });
    expect(failed!.error).toMatch(/are not both on the cluster any more \(was the preview deleted\?\)\. The project's database was not changed\./);
    expect(await hashesAs(env, p.role, p.database)).toEqual(oldHashes);
    expect(await allowsConnections(env, p.database)).toBe(true);
    const promotion = await promotionOf(env, failed!.id);
    expect(await getBackup(env.deps, p.tenant.projectId, promotion.safety_backup_id)).toMatchObject({ state: "completed", verification_state: "verified" });
    expect(await existing(env, [promotion.parked_database])).toEqual([]);
    expect(await env.query("postgres", "SELECT 1 FROM pg_roles WHERE rolname = $1", [promotion.parked_database])).toEqual([]);
    const parked = await getPreview(env.deps, promotion.parked_preview_id);
    expect(parked === undefined || parked.state === "deleted", JSON.stringify(parked)).toBe(true);
    // A new promote of the project is accepted again (the failed one no longer holds it).
    const again = await promoteRequest(env, key, preview.id, await approval(env, p.tenant.projectId, p.tenant.organizationId));
    expect(again.res.status, JSON.stringify(again.json)).not.toBe(409);
  }, 240_000);
});

void jobOf;
