import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { body } from "../support/spec.ts";

let env: TestEnv;
let tenant: Tenant;
let other: Tenant;
let key: string;
let otherKey: string;
let adminKey: string;

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "validation_db" });
  other = await env.seedTenant({ database: "validation_other" });
  key = await tenant.key();
  otherKey = await other.key();
  adminKey = await tenant.key(["api_keys:read", "api_keys:write", "backups:read"]);
  for (const [t, k] of [
    [tenant, key],
    [other, otherKey],
  ] as const) {
    for (let i = 0; i < 2; i++) {
      const res = await env.app().request(`/v1/projects/${t.projectId}/backups`, { method: "POST", headers: { "x-api-key": k } });
      expect(res.status).toBe(202);
    }
  }
});
afterAll(async () => env?.cleanup());

const get = (path: string, k = key) => env.app().request(path, { headers: { "x-api-key": k } });
const cursorOf = async (path: string, k = key) => {
  const res = await get(`${path}?limit=1`, k);
  expect(res.status).toBe(200);
  const c = res.headers.get("x-next-cursor");
  expect(c, `${path} has a next page`).toBeTruthy();
  return c!;
};

describe("paging cursors", () => {
  it("a cursor the server did not issue for this list is a 400 naming the cursor (15 forgeries), a genuine one pages", async () => {
    const backups = `/v1/projects/${tenant.projectId}/backups`;
    const jobs = `/v1/projects/${tenant.projectId}/jobs`;
    const own = { backups: await cursorOf(backups), jobs: await cursorOf(jobs) };
    const foreign = {
      backups: await cursorOf(`/v1/projects/${other.projectId}/backups`, otherKey),
      jobs: await cursorOf(`/v1/projects/${other.projectId}/jobs`, otherKey),
    };
    const ownBackupKey = JSON.parse(Buffer.from(own.backups, "base64url").toString());
    const forgeries: [string, string, string][] = [
      ["another project's backups cursor", backups, foreign.backups],
      ["another project's jobs cursor", jobs, foreign.jobs],
      ["a jobs cursor on the backups list", backups, own.jobs],
      ["a backups cursor on the jobs list", jobs, own.backups],
      ["{}", backups, b64({})],
      ["a number", backups, b64(42)],
      ["a string", backups, b64("x")],
      ["an array", backups, b64([1, 2])],
      ["null", backups, b64(null)],
      ["a lone pk", backups, b64({ pk: `PRJ#${tenant.projectId}` })],
      ["numbers for keys", backups, b64({ pk: 1, sk: 2 })],
      ["an extra attribute", backups, b64({ ...ownBackupKey, gsi2pk: "BKPEXP" })],
      ["the project's schedule item", backups, b64({ pk: `PRJ#${tenant.projectId}`, sk: "SCH" })],
      ["not base64", backups, "!!not-a-cursor!!"],
      ["base64 of text", backups, b64("hello, world")],
    ];
    for (const [what, path, cursor] of forgeries) {
      const res = await get(`${path}?cursor=${encodeURIComponent(cursor)}`);
      const b = await body(res);
      expect(res.status, `${what}: ${JSON.stringify(b)}`).toBe(400);
      expect(b.error, what).toMatch(/cursor/);
    }
    const next = await get(`${backups}?limit=1&cursor=${encodeURIComponent(own.backups)}`);
    expect(next.status, await next.clone().text()).toBe(200);
    expect((await body(next)).backups).toHaveLength(1);
    const nextJobs = await get(`${jobs}?limit=1&cursor=${encodeURIComponent(own.jobs)}`);
    expect(nextJobs.status, await nextJobs.clone().text()).toBe(200);
  });
});

describe("ids", () => {
  it("an id of the wrong shape never reaches the store: 400 in a body (saying what was expected and sent), 404 in a path", async () => {
    const long = `prj_${"a".repeat(5000)}`;
    const res = await env.app().request(`/v1/organizations/${tenant.organizationId}/api-keys`, {
      method: "POST",
      headers: { "x-api-key": adminKey, "content-type": "application/json" },
      body: JSON.stringify({ name: "k", scopes: ["backups:read"], project_id: long }),
    });
    const b = await body(res);
    expect(res.status, JSON.stringify(b)).toBe(400);
    expect(b.error).toMatch(/^project_id: must be a project id \(prj_ and 26 characters\), got "prj_a+\.\.\." \(5004 characters\)$/);

    for (const path of [`/v1/projects/${long}/backups`, `/v1/jobs/job_${"z".repeat(5000)}`, `/v1/projects/PRJ_x/jobs`, `/v1/jobs/${tenant.projectId}`]) {
      const r = await get(path);
      expect(r.status, `${path.slice(0, 40)}: ${await r.clone().text()}`).toBe(404);
    }
    const revoke = await env
      .app()
      .request(`/v1/organizations/${tenant.organizationId}/api-keys/key_${"x".repeat(3000)}`, { method: "DELETE", headers: { "x-api-key": adminKey } });
    expect(revoke.status).toBe(404);
  });
});

describe("response headers", () => {
  it("every response carries X-Content-Type-Options: nosniff (success, 4xx, unknown route, health)", async () => {
    const responses = [
      await get(`/v1/projects/${tenant.projectId}/backups`),
      await get(`/v1/projects/${tenant.projectId}/backups?limit=0`),
      await env.app().request(`/v1/projects/${tenant.projectId}/backups`),
      await get("/v1/nowhere"),
      await env.app().request("/health"),
    ];
    for (const r of responses) expect(r.headers.get("x-content-type-options"), `${r.status}`).toBe("nosniff");
  });
});

describe("lists returned whole", () => {
  it("refuse limit and cursor with a 400 naming them, instead of ignoring them", async () => {
    const all = await tenant.key(["projects:read", "api_keys:read", "organizations:read", "backups:read"]);
    const lists = [
      "/v1/projects",
      `/v1/organizations/${tenant.organizationId}/api-keys`,
      `/v1/organizations/${tenant.organizationId}/webhook-endpoints`,
      `/v1/projects/${tenant.projectId}/restore-points`,
    ];
    for (const path of lists) {
      const plain = await get(path, all);
      expect(plain.status, `${path}: ${await plain.clone().text()}`).toBe(200);
      for (const [param, value] of [
        ["limit", "1"],
        ["cursor", "abc"],
      ] as const) {
        const res = await get(`${path}?${param}=${value}`, all);
        const b = await body(res);
        expect(res.status, `${path}?${param}: ${JSON.stringify(b)}`).toBe(400);
        expect(b.error).toMatch(new RegExp(`^${param}: this list is not paged \\(it returns .* in one answer\\): leave out ${param}$`));
      }
    }
  });
});
