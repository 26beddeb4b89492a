import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awsTimeouts } from "../../core/aws/clients.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { createTable } from "../support/outage.ts";
import { body } from "../support/spec.ts";

let env: TestEnv;
let tenant: Tenant;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "timeouts_db" });
});
afterAll(async () => env?.cleanup());

/** Resolves with the response, or with "no answer" once `ms` passed (the request is left to finish on its own). */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<"no answer">((r) => setTimeout(() => r("no answer"), ms).unref())]);

describe("a hung DynamoDB (the process frozen with SIGSTOP)", () => {
  it("answers 503 with Retry-After within 5 s, for reads and writes, with the API's client timeouts", async () => {
    const outage = await createTable(env, { timeouts: awsTimeouts.api });
    try {
      // The key cache on (as deployed): the key is resolved once, so the frozen call is the project lookup.
      const app = env.app({ deps: { ...env.deps, ddb: outage.ddb, table: outage.table }, keyCacheMs: 60_000 });
      const key = await outage.seedKey(tenant);
      const path = `/v1/projects/${outage.projectId}/backups`;
      const ok = await app.request(path, { headers: { "x-api-key": key } });
      expect(ok.status, await ok.clone().text()).toBe(200);

      outage.freeze();
      for (const method of ["GET", "POST"]) {
        const res = await within(Promise.resolve(app.request(path, { method, headers: { "x-api-key": key } })), 5000);
        expect(res, `${method} did not answer within 5 s`).not.toBe("no answer");
        const r = res as Response;
        expect(r.status, `${method}: ${await r.clone().text()}`).toBe(503);
        expect(r.headers.get("retry-after"), method).toMatch(/^\d+$/);
        expect(await body(r)).toEqual({ error: expect.stringMatching(/unavailable/) });
      }

      // A fresh key (not cached) hangs on the key lookup itself: still a 503, not a hang.
      const uncached = env.app({ deps: { ...env.deps, ddb: outage.ddb, table: outage.table }, keyCacheMs: 0 });
      const res = await within(Promise.resolve(uncached.request(path, { headers: { "x-api-key": key } })), 5000);
      expect(res, "no answer within 5 s").not.toBe("no answer");
      expect((res as Response).status).toBe(503);
    } finally {
      outage.thaw();
      await outage.stop();
    }
  });
});

describe("client timeouts", () => {
  it("bound every AWS call well inside the worker's 120 s lease and the API's 5 s answer", () => {
    for (const [role, t] of Object.entries(awsTimeouts)) {
      for (const service of ["ddb", "sqs", "s3"] as const) {
        const c = t[service];
        expect(c.connectionTimeoutMs, `${role}.${service}`).toBeGreaterThan(0);
        expect(c.requestTimeoutMs, `${role}.${service}`).toBeGreaterThan(0);
      }
      // Worst case of one DynamoDB call: every try times out.
      expect(t.maxAttempts * t.ddb.requestTimeoutMs, role).toBeLessThan(role === "api" ? 5000 : 60_000);
    }
  });
});
