import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApproval } from "../../core/approvals/approvals.ts";
import { listProjectAuditEvents } from "../../core/audit/audit.ts";
import { backupObjectKey, newBackupItem } from "../../core/backups/backups.ts";
import { keys } from "../../core/db/keys.ts";
import { putItem } from "../../core/db/store.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { createProject, getProject } from "../../core/orgs/orgs.ts";
import { createPreview, getPreview, markPreviewReady, requestPreviewDelete, type PreviewItem } from "../../core/previews/previews.ts";
import { requestPromote } from "../../core/promote/promote.ts";
import { securityMatrix } from "../support/security.ts";
import { body, expectShape } from "../support/spec.ts";
import { approval, promoteRequest } from "./support.ts";

/**
 * The promote and overwrite-restore requests' refusals: each a 4xx that says which rule, none of
 * which uses up the approval or starts a job. No worker runs here: only the requests.
 */
let env: TestEnv;
let tenant: Tenant;
let other: Tenant;
let key: string;
beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "prm_refusals" });
  other = await env.seedTenant({ database: "prm_refusals_other" });
  key = await tenant.key(["projects:write", "projects:read", "backups:write", "backups:read", "jobs:read"]);
});
afterAll(async () => env?.cleanup());

async function readyPreview(t: Tenant = tenant): Promise<PreviewItem> {
  const project = (await getProject(env.deps, t.projectId))!;
  const { preview } = await createPreview(env.deps, project, { mode: "empty", backupId: null, jobType: "branch.create" });
  return (await markPreviewReady(env.deps, preview, preview.job_id))!;
}

/** A completed, verified backup record of the project (its file is never read: these requests are refused or only queued). */
async function completedBackup(t: Tenant): Promise<string> {
  const project = (await getProject(env.deps, t.projectId))!;
  const b = newBackupItem(project, new Date(), { jobId: "job_none", retentionDays: 7, label: "seeded", scheduleId: null });
  await putItem(env.deps, {
    ...keys.backup(project.id, b.id),
    ...b,
    state: "completed",
    verification_state: "verified",
    row_counts: {},
    pg_dump_version: "15.0",
    sha256: "x",
  });
  return backupObjectKey(project.id, b.id);
}

const restore = async (t: Tenant, payload: Record<string, unknown>, k = key) => {
  const res = await env.app().request(`/v1/projects/${t.projectId}/restores`, {
    method: "POST",
    headers: { authorization: `Bearer ${k}`, "content-type": "application/json" },
    body: JSON.stringify(payload),
  });
  return { res, json: await body(res) };
};

describe("promote refusals", () => {
  it("each approval problem is refused with its own message, and none starts a job", async () => {
    const preview = await readyPreview();
    const cases: [string, string | undefined, number, RegExp][] = [
      ["no token", undefined, 400, /approval_token is required for project\.promote_preview/],
      ["not a token", "hunter2", 403, /not an approval token/],
      ["unknown token", `ap_${"A".repeat(40)}`, 403, /no such approval/],
      [
        "another action",
        await approval(env, tenant.projectId, tenant.organizationId, "project.restore_overwrite"),
        403,
        /approves project\.restore_overwrite, not project\.promote_preview/,
      ],
      ["another project", await approval(env, other.projectId, other.organizationId), 403, /issued for another project/],
    ];
    const past = new Date(Date.now() - 3600_000);
    const expired = await createApproval(
      { ...env.deps, now: () => past },
      { project: { id: tenant.projectId, organization_id: tenant.organizationId }, action: "project.promote_preview", actor: { kind: "operator", id: "t" } },
    );
    cases.push(["expired", expired.token, 403, /expired at/]);
    for (const [what, token, status, message] of cases) {
      const { res, json } = await promoteRequest(env, key, preview.id, token);
      expect(res.status, `${what}: ${JSON.stringify(json)}`).toBe(status);
      expect(Object.keys(json)).toEqual(["error"]);
      expect(json.error, what).toMatch(message);
    }
    const events = (await listProjectAuditEvents(env.deps, tenant.projectId, 50)).items;
    expect(events.filter((e) => e.action === "preview.promote_requested" || e.action === "approval.used")).toEqual([]);

    // The same token, once used, is refused as used.
    const token = await approval(env, tenant.projectId, tenant.organizationId);
    const first = await promoteRequest(env, key, preview.id, token);
    expect(first.res.status, JSON.stringify(first.json)).toBe(202);
    const again = await promoteRequest(env, key, preview.id, token);
    expect(again.res.status, JSON.stringify(again.json)).toBe(403);
    expect(again.json.error).toMatch(/already used/);
  });

  it("refuses a preview that is not ready, a second cutover of a project while one runs, and another organization's preview", async () => {
    const t = await env.seedTenant({ database: "prm_refusals_2" });
    const k = await t.key(["projects:write", "projects:read"]);
    const project = (await getProject(env.deps, t.projectId))!;
    const { preview: provisioning } = await createPreview(env.deps, project, { mode: "empty", backupId: null, jobType: "branch.create" });
    const notReady = await promoteRequest(env, k, provisioning.id, await approval(env, t.projectId, t.organizationId));
    expect(notReady.res.status, JSON.stringify(notReady.json)).toBe(409);
    expect(notReady.json.error).toMatch(/is provisioning: only a ready preview can be promoted/);

    const a = await readyPreview(t);
    const b = await readyPreview(t);
    const first = await promoteRequest(env, k, a.id, await approval(env, t.projectId, t.organizationId));
    expect(first.res.status, JSON.stringify(first.json)).toBe(202);
    const secondToken = await approval(env, t.projectId, t.organizationId);
    const second = await promoteRequest(env, k, b.id, secondToken);
    expect(second.res.status, JSON.stringify(second.json)).toBe(409);
    expect(second.json.error).toContain(`job ${first.json.job.id} (project.promote_preview) is already replacing project ${t.projectId}'s database`);
    // The refused request did not use its approval: it still works once the first job is over.
    const { UpdateCommand } = await import("@aws-sdk/lib-dynamodb");
    await env.deps.ddb.send(
      new UpdateCommand({
        TableName: env.deps.table,
        Key: keys.job(first.json.job.id),
        UpdateExpression: "SET #s = :f",
        ExpressionAttributeNames: { "#s": "state" },
        ExpressionAttributeValues: { ":f": "failed" },
      }),
    );
    const third = await promoteRequest(env, k, b.id, secondToken);
    expect(third.res.status, JSON.stringify(third.json)).toBe(202);

    const foreign = await readyPreview(other);
    const cross = await promoteRequest(env, k, foreign.id, await approval(env, other.projectId, other.organizationId));
    expect(cross.res.status, JSON.stringify(cross.json)).toBe(404);
  });

  it("security matrix: 401 without a valid key, 403 without projects:write, 404 for another organization, 202 with the scope and an approval", async () => {
    // A tenant of its own: the first test's promote is still pending on `tenant`.
    const t = await env.seedTenant({ database: "prm_refusals_3" });
    const preview = await readyPreview(t);
    const siblingProject = await createProject(env.deps, {
      organization_id: t.organizationId,
      cluster_id: t.clusterId,
      name: uniq("sib"),
      database_name: "prm_sib",
    });
    await securityMatrix(
      env,
      {
        name: "promote preview",
        method: "POST",
        path: () => `/v1/preview-databases/${preview.id}/promote`,
        scope: "projects:write",
        body: { approval_token: await approval(env, t.projectId, t.organizationId) },
        ok: 202,
        projectScoped: false,
      },
      { tenant: t, sibling: { ...t, projectId: siblingProject.id }, other, jobId: "job_x", siblingJobId: "job_y" },
    );
  });
});

describe("restores with target_kind project", () => {
  it("are refused for production projects (409: restore into a preview and promote it), whatever the approval", async () => {
    const backupKey = await completedBackup(tenant);
    const { res, json } = await restore(tenant, {
      backup_key: backupKey,
      target_kind: "project",
      approval_token: await approval(env, tenant.projectId, tenant.organizationId, "project.restore_overwrite"),
    });
    expect(res.status, JSON.stringify(json)).toBe(409);
    expect(json.error).toMatch(/production project: restoring over its database is refused\. Restore into a preview .* then promote it/);
  });

  it("need an approval of project.restore_overwrite; a valid one starts a project.restore job with no preview", async () => {
    const project = await createProject(env.deps, {
      organization_id: tenant.organizationId,
      cluster_id: tenant.clusterId,
      name: uniq("np"),
      database_name: "prm_np",
      environment: "non_production",
    });
    const t: Tenant = { ...tenant, projectId: project.id };
    const backupKey = await completedBackup(t);
    const none = await restore(t, { backup_key: backupKey, target_kind: "project" });
    expect(none.res.status, JSON.stringify(none.json)).toBe(400);
    expect(none.json.error).toMatch(/approval_token is required for project\.restore_overwrite/);
    const wrong = await restore(t, { backup_key: backupKey, target_kind: "project", approval_token: await approval(env, project.id, project.organization_id) });
    expect(wrong.res.status, JSON.stringify(wrong.json)).toBe(403);
    expect(wrong.json.error).toMatch(/approves project\.promote_preview, not project\.restore_overwrite/);
    const named = await restore(t, { backup_key: backupKey, target_kind: "project", preview_id: "pvw_x", approval_token: "ap_x" });
    expect(named.res.status, JSON.stringify(named.json)).toBe(400);

    const ok = await restore(t, {
      backup_key: backupKey,
      target_kind: "project",
      approval_token: await approval(env, project.id, project.organization_id, "project.restore_overwrite"),
    });
    expect(ok.res.status, JSON.stringify(ok.json)).toBe(202);
    expectShape("Job", ok.json.job, expect);
    expect(ok.json.job).toMatchObject({ type: "project.restore", preview_database_id: null, state: "pending" });
    expect((await getJobItem(env.deps, ok.json.job.id))?.backup_id).toBe(backupKey.match(/(bkp_\w+)\.dump$/)![1]);
    const events = (await listProjectAuditEvents(env.deps, project.id, 20)).items.map((e) => e.action);
    expect(events).toContain("project.restore_overwrite_requested");
    expect(events).toContain("approval.used");
    expect(events).not.toContain("restore.requested");
  });
});

describe("a promote and a delete of the same preview at once", () => {
  const fresh = async () => {
    const t = await env.seedTenant({ database: uniq("prm_race").replace(/-/g, "_") });
    const k = await t.key(["projects:write", "projects:read", "backups:write", "backups:read", "jobs:read"]);
    return { t, k, project: (await getProject(env.deps, t.projectId))!, preview: await readyPreview(t) };
  };
  const deletePreview = (k: string, id: string) =>
    env.app().request(`/v1/preview-databases/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${k}` } });

  it("a promote that read the preview before a delete committed is refused (409) and its approval stays unused", async () => {
    // prepare: the promote has read the preview (ready) when the delete commits
    const { t, k, project, preview: read } = await fresh();
    const deleted = await deletePreview(k, read.id);
    expect(deleted.status, await deleted.clone().text()).toBe(202);
    const token = await approval(env, t.projectId, t.organizationId);

    // act: the promote commits with the preview as it read it
    const refused = await requestPromote(env.deps, project, read, token, { kind: "api_key", id: "key_test" }).catch((e: unknown) => e);

    // assess: a conflict that says why, nothing started, and the approval still good for a promote that can go ahead
    expect(refused).toMatchObject({
      code: "conflict",
      message: expect.stringMatching(/is now deleting .*only a ready preview can be promoted; the approval was not used/),
    });
    const events = (await listProjectAuditEvents(env.deps, t.projectId, 50)).items.map((e) => e.action);
    expect(events).not.toContain("approval.used");
    expect(events).not.toContain("preview.promote_requested");
    const other = await readyPreview(t);
    const ok = await promoteRequest(env, k, other.id, token);
    expect(ok.res.status, JSON.stringify(ok.json)).toBe(202);
  });

  it("a delete, reset or restore into a preview whose promote was accepted is refused (409), even when it read the preview before", async () => {
    const { t, k, project, preview: read } = await fresh();
    const promoted = await promoteRequest(env, k, read.id, await approval(env, t.projectId, t.organizationId));
    expect(promoted.res.status, JSON.stringify(promoted.json)).toBe(202);

    const res = await deletePreview(k, read.id);
    expect(res.status, await res.clone().text()).toBe(409);
    expect((await body(res)).error).toMatch(new RegExp(`preview ${read.id} is being promoted by job ${promoted.json.job.id}`));
    const reset = await env.app().request(`/v1/preview-databases/${read.id}/reset`, { method: "POST", headers: { authorization: `Bearer ${k}` } });
    expect(reset.status, await reset.clone().text()).toBe(409);
    // The delete that read the preview (and no guard) before the promote committed: refused by the transaction.
    const stale = await requestPreviewDelete(env.deps, project, read).catch((e: unknown) => e);
    expect(stale).toMatchObject({ code: "conflict" });
    expect((await getPreview(env.deps, read.id))?.state).toBe("ready");
  });

  it("sent together, exactly one is accepted", async () => {
    const { t, k, preview } = await fresh();
    const token = await approval(env, t.projectId, t.organizationId);
    const [promote, del] = await Promise.all([promoteRequest(env, k, preview.id, token), deletePreview(k, preview.id)]);
    expect([promote.res.status, del.status].sort(), JSON.stringify(promote.json)).toEqual([202, 409]);
    const used = (await listProjectAuditEvents(env.deps, t.projectId, 50)).items.some((e) => e.action === "approval.used");
    expect(used, "the approval is used only by an accepted promote").toBe(promote.res.status === 202);
  });
});
