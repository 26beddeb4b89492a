import { createWebhookEnv, api, createEndpointViaApi, orgScopes, startReceiver, startWebhookLoops, type ReceivedRequest } from "./support.ts";
import type { TestEnv, Tenant } from "../support/env.ts";
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackupForWork } from "../../core/backups/backups.ts";
import { getExport, markExportCompleted } from "../../core/exports/exports.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { expiredPreviews, getPreview, markPreviewDeleted, markPreviewFailed, markPreviewReady } from "../../core/previews/previews.ts";
import { runJob } from "../../core/worker/run.ts";
import { storedEvents } from "../support/events.ts";
import { postBackup, runQueueUntilSettled, smallDatabase, waitFor } from "../worker/support.ts";

/**
 * The events of previews, restores and exports: each delivered once, signed, to a real
 * receiver, for real jobs run by the worker; a redelivered job message announces nothing again.
 */
let env: TestEnv;
let tenant: Tenant;
let key: string;
let backup: { id: string; backup_key: string };
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let secret: string;
let loops: ReturnType<typeof startWebhookLoops>;

beforeAll(async () => {
  env = await createWebhookEnv();
  tenant = await env.seedTenant({ database: await smallDatabase(env) });
  key = await tenant.key([...orgScopes, "projects:read", "projects:write"]);
  const job = await postBackup(env, tenant, { label: "events-source" });
  const [settled] = await runQueueUntilSettled(env.deps, [job.id]);
  expect(settled?.state, JSON.stringify(settled)).toBe("completed");
  backup = (await getBackupForWork(env.deps, tenant.projectId, settled!.backup_id!))!;
  receiver = await startReceiver();
  const created = await createEndpointViaApi(env, tenant, key, {
    url: receiver.url,
    event_types: ["restore.completed", "preview.ready", "preview.deleted", "export.completed"],
  });
  secret = created.plaintext_secret;
  loops = startWebhookLoops(env);
}, 180_000);
afterAll(async () => {
  await loops?.stop();
  await receiver?.close();
  await env?.cleanup();
});

/** The receiver's own check, written from the SPEC and not with the service's code. */
function signedBy(secret: string, req: ReceivedRequest): boolean {
  const header = String(req.headers["x-capydb-signature"]);
  const t = /(?:^|,)t=(\d+)/.exec(header)?.[1];
  const mac = createHmac("sha256", secret).update(`${t}.${req.body}`).digest("hex");
  return header.split(",").includes(`v1=${mac}`);
}

/** What the receiver got for `type` about `field` = `value`. */
const received = (type: string, field: string, value: string) =>
  receiver.requests.filter((r) => r.headers["x-capydb-event"] === type && JSON.parse(r.body).data[field] === value);

async function call(method: string, path: string, body?: unknown) {
  const res = await api(env, key, method, path, body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body as { job: { id: string; preview_database_id: string | null }; export_id?: string };
}

/** Runs the job to completion, then hands its message to the worker again (SQS delivers at least once). */
async function runAndRedeliver(jobId: string) {
  const [done] = await runQueueUntilSettled(env.deps, [jobId]);
  expect(done?.state, JSON.stringify(done)).toBe("completed");
  const again = await runJob(env.deps, jobId, { receiptHandle: "redelivered", receiveCount: 2 });
  expect(again).toMatchObject({ status: "ignored", ack: true });
}

describe("restore, preview and export events", () => {
  it("a restore into a new preview: restore.completed and preview.ready once each; deleting it: preview.deleted once", async () => {
    // act: restore the backup into a new preview, then delete the preview; each job's message delivered twice
    const restore = await call("POST", `/v1/projects/${tenant.projectId}/restores`, {
      backup_key: backup.backup_key,
      target_kind: "new_preview",
      preview_name: "events-restore",
    });
    const previewId = restore.job.preview_database_id!;
    await runAndRedeliver(restore.job.id);
    const deletion = await call("DELETE", `/v1/preview-databases/${previewId}`);
    await runAndRedeliver(deletion.job.id);
    await waitFor(
      "the receiver to hear all three events",
      async () =>
        received("restore.completed", "preview_id", previewId).length &&
        received("preview.ready", "preview_id", previewId).length &&
        received("preview.deleted", "preview_id", previewId).length
          ? true
          : undefined,
      30_000,
    );

    // assess: the payloads name the restore and the preview, each request is signed with the endpoint's secret
    const [restored] = received("restore.completed", "preview_id", previewId);
    expect(signedBy(secret, restored!), String(restored!.headers["x-capydb-signature"])).toBe(true);
    expect(JSON.parse(restored!.body)).toEqual({
      id: expect.stringMatching(/^evt_/),
      type: "restore.completed",
      created_at: expect.any(String),
      data: {
        project_id: tenant.projectId,
        job_id: restore.job.id,
        backup_id: backup.id,
        backup_key: backup.backup_key,
        target_kind: "preview",
        preview_id: previewId,
        database_name: `capydb_pvw_${previewId.slice(4)}`,
        state: "completed",
        completed_at: expect.any(String),
      },
    });
    const [ready] = received("preview.ready", "preview_id", previewId);
    expect(signedBy(secret, ready!)).toBe(true);
    expect(JSON.parse(ready!.body).data).toMatchObject({
      project_id: tenant.projectId,
      preview_id: previewId,
      job_id: restore.job.id,
      name: "events-restore",
      mode: "clone",
      state: "ready",
      source_backup_id: backup.id,
    });
    // never a secret in an event: no password or connection string
    expect(ready!.body).not.toMatch(/password|postgres(ql)?:\/\//i);
    const [deleted] = received("preview.deleted", "preview_id", previewId);
    expect(signedBy(secret, deleted!)).toBe(true);
    expect(JSON.parse(deleted!.body).data).toMatchObject({ preview_id: previewId, job_id: deletion.job.id, state: "deleted", deleted_at: expect.any(String) });

    // the redeliveries and a repeated transition announced nothing again: one stored event each, one request each
    const preview = (await getPreview(env.deps, previewId))!;
    expect(preview.state).toBe("deleted");
    expect(await markPreviewDeleted(env.deps, preview, deletion.job.id)).toBeUndefined();
    for (const type of ["restore.completed", "preview.ready", "preview.deleted"]) {
      expect(await storedEvents(env.deps, { type, field: "preview_id", value: previewId }), type).toHaveLength(1);
    }
    for (const [type, field] of [
      ["restore.completed", "preview_id"],
      ["preview.ready", "preview_id"],
      ["preview.deleted", "preview_id"],
    ] as const) {
      expect(received(type, field, previewId), type).toHaveLength(1);
    }
  });

  it("a new empty preview: preview.ready only (no restore.completed), once even when two settle it at the same time", async () => {
    const created = await call("POST", `/v1/projects/${tenant.projectId}/preview-databases`, { name: "events-empty", mode: "empty" });
    const previewId = created.job.preview_database_id!;
    await runAndRedeliver(created.job.id);
    await waitFor("the receiver to hear preview.ready", async () => received("preview.ready", "preview_id", previewId).length || undefined, 30_000);
    expect(JSON.parse(received("preview.ready", "preview_id", previewId)[0]!.body).data).toMatchObject({
      mode: "empty",
      source_backup_id: null,
      state: "ready",
    });

    // two more transitions to ready for the same job, racing: the state condition lets neither through
    const preview = (await getPreview(env.deps, previewId))!;
    const racing = await Promise.all([
      markPreviewReady(env.deps, { ...preview, state: "provisioning" }, created.job.id),
      markPreviewReady(env.deps, preview, created.job.id),
    ]);
    expect(racing).toEqual([undefined, undefined]);
    expect(await storedEvents(env.deps, { type: "preview.ready", field: "preview_id", value: previewId })).toHaveLength(1);
    expect(await storedEvents(env.deps, { type: "restore.completed", field: "preview_id", value: previewId })).toHaveLength(0);
  });

  /**
   * A preview whose job has started (the worker's copy is read then) and which the user extends
   * afterwards, to 100 h from the 24 h it was created with.
   */
  async function extendedWhileItsJobRuns(name: string) {
    const created = await call("POST", `/v1/projects/${tenant.projectId}/preview-databases`, { name, mode: "empty", ttl_hours: 24 });
    const previewId = created.job.preview_database_id!;
    const workersCopy = (await getPreview(env.deps, previewId))!;
    const extended = await api(env, key, "POST", `/v1/preview-databases/${previewId}/extend`, { ttl_hours: 100 });
    expect(extended.status, JSON.stringify(extended.body)).toBe(200);
    return { jobId: created.job.id, previewId, workersCopy, expiresAt: extended.body.preview.ttl_expires_at as string };
  }

  /** Two days on (past the first expiry, well before the extended one) it is kept; after the extended one it is due. */
  async function expectExpiresAt(previewId: string, expiresAt: string) {
    const later = { ...env.deps, now: () => new Date(Date.now() + 48 * 3600_000) };
    expect((await expiredPreviews(later, 1000)).map((p) => p.id)).not.toContain(previewId);
    const muchLater = { ...env.deps, now: () => new Date(Date.parse(expiresAt) + 60_000) };
    expect((await expiredPreviews(muchLater, 1000)).map((p) => p.id)).toContain(previewId);
  }

  it("a preview extended while its job runs keeps the new expiry once ready: not deleted at the old one, and the event says the new one", async () => {
    const { jobId, previewId, workersCopy, expiresAt } = await extendedWhileItsJobRuns("events-extended");
    // the attempt ends: ready, from its old copy (then the job itself runs and completes, adding nothing)
    expect(await markPreviewReady(env.deps, workersCopy, jobId)).toMatchObject({ state: "ready", expires_at: expiresAt });
    await runAndRedeliver(jobId);
    await waitFor("the receiver to hear preview.ready", async () => received("preview.ready", "preview_id", previewId).length || undefined, 30_000);
    expect(JSON.parse(received("preview.ready", "preview_id", previewId)[0]!.body).data.expires_at).toBe(expiresAt);
    await expectExpiresAt(previewId, expiresAt);
    expect(await storedEvents(env.deps, { type: "preview.ready", field: "preview_id", value: previewId })).toHaveLength(1);
  });

  it("a preview extended while its job runs keeps the new expiry once failed too: not deleted at the old one", async () => {
    const { jobId, previewId, workersCopy, expiresAt } = await extendedWhileItsJobRuns("events-extended-failed");
    // the attempt fails for good, from its old copy
    expect(await markPreviewFailed(env.deps, workersCopy, jobId, "The restore failed.")).toMatchObject({ state: "failed", expires_at: expiresAt });
    await expectExpiresAt(previewId, expiresAt);
  });

  it("an export: export.completed once, with its size and checksum; a redelivered job message adds none", async () => {
    const created = await call("POST", `/v1/projects/${tenant.projectId}/exports`);
    const exportId = created.export_id!;
    await runAndRedeliver(created.job.id);
    await waitFor("the receiver to hear export.completed", async () => received("export.completed", "export_id", exportId).length || undefined, 30_000);

    const exp = (await getExport(env.deps, tenant.projectId, exportId))!;
    const [req] = received("export.completed", "export_id", exportId);
    expect(signedBy(secret, req!)).toBe(true);
    expect(JSON.parse(req!.body).data).toEqual({
      project_id: tenant.projectId,
      export_id: exportId,
      job_id: created.job.id,
      database_name: tenant.database,
      size_bytes: exp.size_bytes,
      sha256: exp.sha256,
      state: "completed",
      expires_at: exp.expires_at,
      completed_at: exp.completed_at,
    });
    expect(exp.size_bytes).toBeGreaterThan(0);
    // settled already: completing it again is refused and announces nothing
    expect(await markExportCompleted(env.deps, exp)).toBeUndefined();
    expect(await storedEvents(env.deps, { type: "export.completed", field: "export_id", value: exportId })).toHaveLength(1);
    expect((await getJobItem(env.deps, created.job.id))?.state).toBe("completed");
  });
});
