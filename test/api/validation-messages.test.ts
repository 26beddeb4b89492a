import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { body } from "../support/spec.ts";

/**
 * Validation messages, on every route through the app's one zod hook: a field sent as `null` or
 * with the wrong type says what was expected and what was sent; a field not sent at all is
 * `is required`.
 */
let env: TestEnv;
let tenant: Tenant;
let key: string;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "valmsg_db" });
  key = await tenant.key([
    "backups:read",
    "backups:write",
    "jobs:read",
    "projects:read",
    "projects:write",
    "api_keys:write",
    "organizations:read",
    "organizations:write",
  ]);
});
afterAll(async () => env?.cleanup());

type Case = [what: string, method: string, path: () => string, payload: unknown, error: string];

const project = () => `/v1/projects/${tenant.projectId}`;
const schedule = { cron_hour: 1, cron_minute: 0, is_active: true };

const cases: Case[] = [
  ["backup label null", "POST", () => `${project()}/backups`, { label: null }, "label: expected string, got null"],
  ["backup label number", "POST", () => `${project()}/backups`, { label: 5 }, "label: expected string, got number 5"],
  ["backup retention as text", "POST", () => `${project()}/backups`, { retention_days: "7" }, 'retention_days: expected number, got string "7"'],
  ["backup retention fractional", "POST", () => `${project()}/backups`, { retention_days: 1.5 }, "retention_days: expected integer, got number 1.5"],
  [
    "backup retention too large",
    "POST",
    () => `${project()}/backups`,
    { retention_days: 400 },
    "retention_days: Too big: expected number to be <=365, got 400",
  ],
  ["backup body an array", "POST", () => `${project()}/backups`, [1], "body: expected object, got array"],
  ["schedule hour null", "PUT", () => `${project()}/scheduled-backups/default`, { ...schedule, cron_hour: null }, "cron_hour: expected number, got null"],
  [
    "schedule is_active text",
    "PUT",
    () => `${project()}/scheduled-backups/default`,
    { ...schedule, is_active: "yes" },
    'is_active: expected boolean, got string "yes"',
  ],
  ["schedule is_active missing", "PUT", () => `${project()}/scheduled-backups/default`, { cron_hour: 1, cron_minute: 0 }, "is_active: is required"],
  ["schedule label object", "PUT", () => `${project()}/scheduled-backups/default`, { ...schedule, label: { a: 1 } }, "label: expected string, got object"],
  ["preview mode unknown", "POST", () => `${project()}/preview-databases`, { mode: "fork" }, 'mode: expected one of "empty"|"clone", got string "fork"'],
  ["preview mode null", "POST", () => `${project()}/preview-databases`, { mode: null }, 'mode: expected one of "empty"|"clone", got null'],
  ["preview ttl boolean", "POST", () => `${project()}/preview-databases`, { ttl_hours: true }, "ttl_hours: expected number, got boolean true"],
  ["restore point label null", "POST", () => `${project()}/restore-points`, { label: null }, "label: expected string, got null"],
  ["restore point label missing", "POST", () => `${project()}/restore-points`, {}, "label: is required"],
  ["restore backup_key number", "POST", () => `${project()}/restores`, { backup_key: 12 }, "backup_key: expected string, got number 12"],
  [
    "restore target_kind unknown",
    "POST",
    () => `${project()}/restores`,
    { backup_key: "x", target_kind: "cluster" },
    'target_kind: expected one of "new_preview"|"preview"|"project", got string "cluster"',
  ],
  [
    "api key name null",
    "POST",
    () => `/v1/organizations/${tenant.organizationId}/api-keys`,
    { name: null, scopes: ["backups:read"] },
    "name: expected string, got null",
  ],
  [
    "api key scopes a string",
    "POST",
    () => `/v1/organizations/${tenant.organizationId}/api-keys`,
    { name: "k", scopes: "backups:read" },
    'scopes: expected array, got string "backups:read"',
  ],
  [
    "api key scope in list",
    "POST",
    () => `/v1/organizations/${tenant.organizationId}/api-keys`,
    { name: "k", scopes: [7] },
    expect.stringMatching(/^scopes\.0: expected one of "backups:read"\|.*, got number 7$/) as unknown as string,
  ],
  ["api key scopes missing", "POST", () => `/v1/organizations/${tenant.organizationId}/api-keys`, { name: "k" }, "scopes: is required"],
  ["webhook url number", "POST", () => `/v1/organizations/${tenant.organizationId}/webhook-endpoints`, { url: 443 }, "url: expected string, got number 443"],
  ["backups limit text", "GET", () => `${project()}/backups?limit=many`, undefined, 'limit: expected number, got string "many"'],
  ["jobs limit zero", "GET", () => `${project()}/jobs?limit=0`, undefined, "limit: Too small: expected number to be >=1, got 0"],
];

describe("validation messages", () => {
  it.each(cases)("%s", async (_what, method, path, payload, error) => {
    const res = await env.app().request(path(), {
      method,
      headers: { "x-api-key": key, ...(payload !== undefined ? { "content-type": "application/json" } : {}) },
      body: payload !== undefined ? JSON.stringify(payload) : undefined,
    });
    const b = await body(res);
    expect(res.status, JSON.stringify(b)).toBe(400);
    expect(b).toEqual({ error });
  });
});

describe("list limits: one rule for every list", () => {
  const lists = () => {
    const org = `/v1/organizations/${tenant.organizationId}`;
    return [
      `${project()}/backups`,
      `${project()}/jobs`,
      `${project()}/exports`,
      `${project()}/preview-databases`,
      `${project()}/audit-events`,
      `${org}/audit-events`,
      `${org}/webhook-endpoints/${webhookEndpointId}/deliveries`,
    ];
  };
  let webhookEndpointId: string;
  beforeAll(async () => {
    env.deps.webhookPolicy = { allowLoopbackHttp: true };
    const res = await env.app().request(`/v1/organizations/${tenant.organizationId}/webhook-endpoints`, {
      method: "POST",
      headers: { "x-api-key": key, "content-type": "application/json" },
      body: JSON.stringify({ url: "http://127.0.0.1:9/limits" }),
    });
    const b = await body(res);
    expect(res.status, JSON.stringify(b)).toBe(201);
    webhookEndpointId = b.webhook_endpoint.id;
  });

  it("a limit above a list's maximum is clamped (200), 0 and text are 400s naming limit", async () => {
    for (const list of lists()) {
      for (const [limit, status] of [
        ["5000", 200],
        ["1", 200],
        ["0", 400],
        ["-3", 400],
        ["ten", 400],
      ] as const) {
        const res = await env.app().request(`${list}?limit=${limit}`, { headers: { "x-api-key": key } });
        const b = await body(res);
        expect(res.status, `${list}?limit=${limit}: ${JSON.stringify(b)}`).toBe(status);
        if (status === 400) expect(b.error, list).toMatch(/^limit: /);
      }
    }
  });
});
