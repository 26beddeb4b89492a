import { GetCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APPROVAL_TTL_MS, commitWithApproval, createApproval, hashApprovalToken } from "../../core/approvals/approvals.ts";
import { keys } from "../../core/db/keys.ts";
import { AppError } from "../../core/errors.ts";
import { startFakeClerk } from "../support/clerk.ts";
import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import { body, expectShape } from "../support/spec.ts";

let env: TestEnv;
let clerk: Awaited<ReturnType<typeof startFakeClerk>>;
let tenant: Tenant;
let sibling: Tenant;
const clerkOrg = uniq("org_clerk");
const otherClerkOrg = uniq("org_clerk_other");
let app: ReturnType<TestEnv["app"]>;

beforeAll(async () => {
  env = await createTestEnv();
  clerk = await startFakeClerk();
  const db = await env.createDatabase();
  tenant = await env.seedTenant({ database: db, clerkOrganizationId: clerkOrg });
  await env.seedTenant({ database: db, clerkOrganizationId: otherClerkOrg });
  // A second project of the same organization.
  const { createProject } = await import("../../core/orgs/orgs.ts");
  const p = await createProject(env.deps, { organization_id: tenant.organizationId, cluster_id: tenant.clusterId, name: uniq("sib"), database_name: db });
  sibling = { ...tenant, projectId: p.id };
  app = env.app({ clerk: clerk.config });
});
afterAll(async () => {
  await clerk?.stop();
  await env?.cleanup();
});

const mint = (projectId: string, credential: string, action: unknown = "project.promote_preview") =>
  app.request(`/v1/projects/${projectId}/approvals`, {
    method: "POST",
    headers: { authorization: `Bearer ${credential}`, "content-type": "application/json" },
    body: JSON.stringify({ action }),
  });

/** Runs the consumption the promote and overwrite-restore requests perform, with no other write. */
const consume = (token: string | undefined, projectId: string, action: "project.promote_preview" | "project.restore_overwrite", deps = env.deps) =>
  commitWithApproval(
    deps,
    token,
    {
      project: { id: projectId, organization_id: tenant.organizationId },
      action,
      actor: { kind: "api_key", id: "key_test" },
      target_type: "job",
      target_id: uniq("job"),
    },
    [],
  );

async function refusal(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected a refusal").toBeInstanceOf(AppError);
  return { status: (err as AppError).status, message: (err as AppError).message };
}

describe("POST /v1/projects/{projectID}/approvals", () => {
  it("lets an organization admin's session mint a single-use token; only its hash is stored", async () => {
    const before = Date.now();
    const res = await mint(tenant.projectId, await clerk.admin(clerkOrg), "project.restore_overwrite");
    const b = await body(res);
    expect(res.status, JSON.stringify(b)).toBe(201);
    expect(Object.keys(b)).toEqual(["approval"]);
    expectShape("Approval", b.approval, expect);
    expect(b.approval.action).toBe("project.restore_overwrite");
    expect(b.approval.token).toMatch(/^ap_[0-9A-Za-z]{40}$/);
    expect(b.approval.id).toMatch(/^apv_/);
    const ttl = Date.parse(b.approval.expires_at) - before;
    expect(ttl).toBeGreaterThan(APPROVAL_TTL_MS - 5_000);
    expect(ttl).toBeLessThanOrEqual(APPROVAL_TTL_MS + 1_000);

    const stored = await env.deps.ddb.send(new GetCommand({ TableName: env.names.table, Key: keys.approval(hashApprovalToken(b.approval.token)) }));
    expect(stored.Item).toMatchObject({ id: b.approval.id, project_id: tenant.projectId, action: "project.restore_overwrite", used_at: null });
    const everything = JSON.stringify((await env.deps.ddb.send(new ScanCommand({ TableName: env.names.table }))).Items);
    expect(everything).not.toContain(b.approval.token);

    // The token works once.
    await consume(b.approval.token, tenant.projectId, "project.restore_overwrite");
    const again = await refusal(consume(b.approval.token, tenant.projectId, "project.restore_overwrite"));
    expect(again.status).toBe(403);
    expect(again.message).toMatch(/already used/);
  });

  it("refuses an API key, even one with every scope, saying an admin must approve", async () => {
    const key = await tenant.key(["backups:read", "backups:write", "jobs:read", "projects:read", "projects:write", "organizations:write", "api_keys:write"]);
    const res = await mint(tenant.projectId, key);
    const b = await body(res);
    expect(res.status, JSON.stringify(b)).toBe(403);
    expect(b.error).toMatch(/an organization admin must approve project\.promote_preview/);
    expect(b.error).toMatch(/API keys cannot mint approvals/);
  });

  it("refuses a member's session with its own message", async () => {
    const res = await mint(tenant.projectId, await clerk.member(clerkOrg));
    const b = await body(res);
    expect(res.status, JSON.stringify(b)).toBe(403);
    expect(b.error).toMatch(/only an organization admin can approve project\.promote_preview/);
  });

  it("answers 404 to another organization's admin, 400 for an unknown action, 401 without a credential", async () => {
    const foreign = await mint(tenant.projectId, await clerk.admin(otherClerkOrg));
    expect(foreign.status, JSON.stringify(await body(foreign))).toBe(404);
    const bad = await mint(tenant.projectId, await clerk.admin(clerkOrg), "project.drop_everything");
    const bb = await body(bad);
    expect(bad.status, JSON.stringify(bb)).toBe(400);
    expect(bb.error).toMatch(/^action:/);
    const none = await app.request(`/v1/projects/${tenant.projectId}/approvals`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(none.status).toBe(401);
  });
});

describe("using an approval token", () => {
  const mintToken = async (action: "project.promote_preview" | "project.restore_overwrite", projectId = tenant.projectId) =>
    (await createApproval(env.deps, { project: { id: projectId, organization_id: tenant.organizationId }, action, actor: { kind: "operator", id: "test" } }))
      .token;

  it("refuses each misuse with its own message", async () => {
    const messages = new Set<string>();
    const expectRefused = async (p: Promise<unknown>, status: number, pattern: RegExp) => {
      const r = await refusal(p);
      expect(r.status, r.message).toBe(status);
      expect(r.message).toMatch(pattern);
      messages.add(r.message.replace(/\d{4}-\d\d-\d\dT[\d:]+Z/g, "<time>"));
    };

    await expectRefused(consume(undefined, tenant.projectId, "project.promote_preview"), 400, /approval_token is required for project\.promote_preview/);
    await expectRefused(consume("not-a-token", tenant.projectId, "project.promote_preview"), 403, /not an approval token/);
    await expectRefused(consume(`ap_${"x".repeat(40)}`, tenant.projectId, "project.promote_preview"), 403, /no such approval/);

    const reused = await mintToken("project.promote_preview");
    await consume(reused, tenant.projectId, "project.promote_preview");
    await expectRefused(consume(reused, tenant.projectId, "project.promote_preview"), 403, /already used at .*each approval allows one operation/);

    const expiring = await mintToken("project.promote_preview");
    const later = { ...env.deps, now: () => new Date(Date.now() + APPROVAL_TTL_MS + 60_000) };
    await expectRefused(consume(expiring, tenant.projectId, "project.promote_preview", later), 403, /expired at/);

    const forSibling = await mintToken("project.promote_preview", sibling.projectId);
    await expectRefused(consume(forSibling, tenant.projectId, "project.promote_preview"), 403, /issued for another project/);

    const forRestore = await mintToken("project.restore_overwrite");
    await expectRefused(
      consume(forRestore, tenant.projectId, "project.promote_preview"),
      403,
      /approves project\.restore_overwrite, not project\.promote_preview/,
    );

    expect(messages.size).toBe(7);
    // The refused tokens were not burnt: each still works for what it approves.
    await consume(forSibling, sibling.projectId, "project.promote_preview");
    await consume(forRestore, tenant.projectId, "project.restore_overwrite");
    await consume(expiring, tenant.projectId, "project.promote_preview");
  });

  it("lets exactly one of many concurrent requests use a token", async () => {
    const token = await mintToken("project.restore_overwrite");
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => consume(token, tenant.projectId, "project.restore_overwrite")));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) {
      if (r.status === "rejected") expect((r.reason as AppError).message).toMatch(/already used|changed concurrently|conflict/i);
    }
  });

  it("is not burnt when the operation's own write is refused", async () => {
    const token = await mintToken("project.promote_preview");
    const blocked = commitWithApproval(
      env.deps,
      token,
      {
        project: { id: tenant.projectId, organization_id: tenant.organizationId },
        action: "project.promote_preview",
        actor: { kind: "api_key", id: "k" },
        target_type: "job",
        target_id: "job_x",
      },
      [{ ConditionCheck: { TableName: env.names.table, Key: { pk: "NOPE", sk: "NOPE" }, ConditionExpression: "attribute_exists(pk)" } }],
      "the preview changed meanwhile",
    );
    const r = await refusal(blocked);
    expect(r.status).toBe(409);
    expect(r.message).toBe("the preview changed meanwhile");
    await consume(token, tenant.projectId, "project.promote_preview");
  });
});
