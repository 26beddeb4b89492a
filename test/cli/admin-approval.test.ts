import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commitWithApproval } from "../../core/approvals/approvals.ts";
import { listProjectAuditEvents } from "../../core/audit/audit.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";

let env: TestEnv;
let tenant: Tenant;
beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: await env.createDatabase() });
});
afterAll(async () => env?.cleanup());

function admin(args: string[]) {
  const res = spawnSync(process.execPath, ["--import", "tsx", "cli/admin.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env.serviceEnv(), CAPYDB_OPERATOR: "alice@ops" },
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe("capydb-admin approval create", () => {
  it("mints a token for one project and action, recorded with the operator as actor; the token works once", async () => {
    const res = admin(["approval", "create", "--project", tenant.projectId, "--action", "project.promote_preview"]);
    expect(res.status, res.stderr).toBe(0);
    const { approval } = JSON.parse(res.stdout);
    expect(Object.keys(approval).sort()).toEqual(["action", "expires_at", "id", "token"]);
    expect(approval).toMatchObject({ action: "project.promote_preview", token: expect.stringMatching(/^ap_/) });
    expect(res.stderr).toMatch(/Single use/);

    const events = (await listProjectAuditEvents(env.deps, tenant.projectId, 10)).items;
    expect(events[0]).toMatchObject({ action: "approval.created", actor_kind: "operator", actor_id: "alice@ops", target_id: approval.id });
    expect(JSON.stringify(events)).not.toContain(approval.token);

    const use = {
      project: { id: tenant.projectId, organization_id: tenant.organizationId },
      action: "project.promote_preview" as const,
      actor: { kind: "api_key" as const, id: "key_x" },
      target_type: "job",
      target_id: "job_x",
    };
    await commitWithApproval(env.deps, approval.token, use, []);
    await expect(commitWithApproval(env.deps, approval.token, use, [])).rejects.toThrow(/already used/);
    const used = (await listProjectAuditEvents(env.deps, tenant.projectId, 10)).items[0];
    expect(used).toMatchObject({
      action: "approval.used",
      actor_kind: "api_key",
      actor_id: "key_x",
      metadata: { approved_by_actor_kind: "operator", approved_by_actor_id: "alice@ops" },
    });
  });

  it("refuses an unknown action (exit 2) and an unknown project (exit 2)", () => {
    const bad = admin(["approval", "create", "--project", tenant.projectId, "--action", "project.drop"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--action/);
    const missing = admin(["approval", "create", "--project", "prj_00000000000000000000000000", "--action", "project.restore_overwrite"]);
    expect(missing.status, missing.stderr).toBe(2);
    expect(missing.stderr).toMatch(/project prj_0+ not found/);
  });
});
