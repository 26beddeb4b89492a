import { createTestEnv, uniq, type Tenant, type TestEnv } from "../support/env.ts";
import fc from "fast-check";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allScopes } from "../../core/auth/scopes.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { backupOf, CapturingLogger, fastOptions, postBackup, runQueueUntilSettled } from "../worker/support.ts";
import { canaryClusterUrl, canarySightings, scanTable, wrappedInstallation } from "./support.ts";

const logLines: string[] = [];
/** Every API response body this file saw: none may carry the canary. */
const responses: string[] = [];
let env: TestEnv;
let dir: string;
let clusterUrl: string;
beforeAll(async () => {
  env = await createTestEnv({ log: new CapturingLogger(logLines) });
  dir = mkdtempSync(join(tmpdir(), "capydb-abuse-"));
  clusterUrl = await canaryClusterUrl(env);
});
afterAll(async () => {
  expect(canarySightings("log", logLines)).toEqual([]);
  expect(canarySightings("response", responses)).toEqual([]);
  expect(
    canarySightings(
      "item",
      (await scanTable(env.deps)).map((i) => JSON.stringify(i)),
    ),
  ).toEqual([]);
  rmSync(dir, { recursive: true, force: true });
  await env?.cleanup();
});

async function request(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await env.app().request(path, init);
  const text = await res.text();
  responses.push(text);
  return { res, text };
}

describe("random requests against every endpoint (fast-check)", () => {
  it("never answer 5xx, and every error is a JSON {error}", async () => {
    // prepare: real ids and a key with every scope, so that requests also reach the handlers
    const tenant = await env.seedTenant({ database: "abuse_db", clusterUrl });
    const other = await env.seedTenant({ database: "abuse_other", clusterUrl });
    const key = await tenant.key([...allScopes]);
    const job = await postBackup(env, tenant);
    const projectId = fc.constantFrom(tenant.projectId, other.projectId, "prj_01m8bbd943485gy3g6c722w2d4");
    const segment = fc.oneof(fc.string(), fc.constantFrom("..", "%00", "%2F", "%ZZ", "default", "'; DROP TABLE x; --", "$(id)", "a".repeat(300)));
    const anyId = fc.oneof(projectId, segment.map(encodeURIComponent));
    const path = fc.oneof(
      fc
        .tuple(anyId, fc.constantFrom("backups", "jobs", "scheduled-backups", "scheduled-backups/default", "scheduled-backups/other", ""))
        .map(([p, r]) => `/v1/projects/${p}/${r}`),
      fc.oneof(fc.constant(job.id), segment.map(encodeURIComponent)).map((j) => `/v1/jobs/${j}`),
      fc
        .tuple(
          fc.oneof(fc.constant(tenant.organizationId), fc.constant(other.organizationId), segment.map(encodeURIComponent)),
          fc.option(segment.map(encodeURIComponent)),
        )
        .map(([o, k]) => `/v1/organizations/${o}/api-keys${k === null ? "" : `/${k}`}`),
      fc.constantFrom("/v1/me", "/v1/openapi.json", "/health", "/", "/v1", "/v1/projects"),
      fc.webPath(),
    );
    const query = fc.option(
      fc
        .tuple(fc.constantFrom("limit", "cursor", "x"), fc.oneof(fc.integer({ min: -5, max: 500 }).map(String), fc.string()))
        .map(([k, v]) => `?${k}=${encodeURIComponent(v)}`),
      { nil: "" },
    );
    const credential = fc.oneof(
      fc.constant<Record<string, string>>({ authorization: `Bearer ${key}` }),
      fc.constant<Record<string, string>>({ "x-api-key": key }),
      fc.constant<Record<string, string>>({}),
      fc.string().map((s) => ({ authorization: `Bearer ${s}` })),
      fc.string().map((s) => ({ authorization: s })),
      fc.string().map((s) => ({ "x-api-key": `capy_live_${s}` })),
      fc.constant<Record<string, string>>({ authorization: "Bearer eyJhbGciOiJSUzI1NiJ9.e30.AAAA" }),
    );
    const contentType = fc.option(
      fc.oneof(
        fc.constantFrom(
          "application/json",
          "application/json; charset=utf-8",
          "text/plain",
          "application/x-www-form-urlencoded",
          "application/merge-patch+json",
        ),
        fc.string(),
      ),
      { nil: undefined },
    );
    const extraHeaders = fc.dictionary(fc.constantFrom("idempotency-key", "x-request-id", "accept", "content-length", "x-forwarded-for"), fc.string(), {
      maxKeys: 3,
    });
    const payload = fc.option(
      fc.oneof(
        fc.jsonValue().map((v) => JSON.stringify(v)),
        fc.string(),
        fc
          .record(
            {
              label: fc.oneof(fc.string(), fc.anything()),
              retention_days: fc.oneof(fc.integer(), fc.double(), fc.string()),
              cron_hour: fc.oneof(fc.integer({ min: -2, max: 30 }), fc.double(), fc.string()),
              cron_minute: fc.oneof(fc.integer({ min: -2, max: 70 }), fc.string()),
              is_active: fc.oneof(fc.boolean(), fc.string()),
              name: fc.string(),
              scopes: fc.array(fc.oneof(fc.constantFrom(...allScopes), fc.string())),
              project_id: fc.oneof(projectId, fc.string()),
            },
            { requiredKeys: [] },
          )
          .map((o) => JSON.stringify(o)),
        fc.constant("x".repeat(70 * 1024)),
      ),
      { nil: undefined },
    );
    const method = fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS");

    // act and assess
    await fc.assert(
      fc.asyncProperty(method, path, query, credential, contentType, extraHeaders, payload, async (m, p, q, cred, type, extra, data) => {
        let req: Request;
        try {
          const headers = new Headers({ ...extra, ...cred });
          if (type !== undefined) headers.set("content-type", type);
          req = new Request(`http://localhost${p}${q}`, { method: m, headers, body: m === "GET" || m === "HEAD" ? undefined : data });
        } catch {
          return; // not a request any client could send (invalid header value or URL)
        }
        const res = await env.app().request(req);
        const text = await res.text();
        responses.push(text);
        const what = `${m} ${p}${q} -> ${res.status} ${text.slice(0, 300)}`;
        expect(res.status, what).toBeLessThan(500);
        if (m === "HEAD") return;
        const json = JSON.parse(text) as Record<string, unknown>;
        if (res.status >= 400) {
          expect(res.headers.get("content-type"), what).toMatch(/^application\/json/);
          expect(Object.keys(json), what).toEqual(["error"]);
          expect(typeof json.error, what).toBe("string");
        }
      }),
      { numRuns: Number(process.env.ABUSE_RUNS ?? 1000) },
    );
  }, 120_000);
});

describe("SQL and shell metacharacters", () => {
  const pwned = join(tmpdir(), `capydb-pwned-${uniq("x")}`);
  const labels = [
    `'; DROP TABLE x; --`,
    `$(touch ${pwned})`,
    `\`touch ${pwned}\`; touch ${pwned} && echo "$PGPASSWORD"`,
    `Robert'); DROP TABLE x;-- \\ " % _ * ?`,
  ];
  let tenant: Tenant;
  beforeAll(async () => {
    // A database, a schema and a table whose names carry the same characters, beside a table x to drop.
    const database = `db'; DROP TABLE x; --$(touch ${pwned.slice(-12)})`.slice(0, 63);
    await env.query("postgres", `CREATE DATABASE ${pg.escapeIdentifier(database)}`);
    await env.query(
      database,
      `CREATE TABLE x (id int); INSERT INTO x VALUES (1), (2);
       CREATE SCHEMA ${pg.escapeIdentifier(`s"; DROP TABLE x; --`)};
       CREATE TABLE ${pg.escapeIdentifier(`s"; DROP TABLE x; --`)}.${pg.escapeIdentifier(`t$(touch ${pwned})`)} (v text);
       INSERT INTO ${pg.escapeIdentifier(`s"; DROP TABLE x; --`)}.${pg.escapeIdentifier(`t$(touch ${pwned})`)} VALUES ('a'), ('b'), ('c');`,
    );
    tenant = await env.seedTenant({ database, clusterUrl });
  });
  afterAll(async () => {
    await env.query("postgres", `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(tenant.database)} WITH (FORCE)`).catch(() => undefined);
  });

  it("labels and names round-trip verbatim through the API and the worker, and nothing runs", async () => {
    // act: a backup per label, the schedule's label, a key's name
    const jobs = [];
    for (const label of labels) jobs.push(await postBackup(env, tenant, { label }));
    const settled = await runQueueUntilSettled(
      env.deps,
      jobs.map((j) => j.id),
    );
    const key = await tenant.key();
    const put = await request(`/v1/projects/${tenant.projectId}/scheduled-backups/default`, {
      method: "PUT",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ cron_hour: 3, cron_minute: 4, is_active: true, label: labels[0] }),
    });
    const adminKey = await tenant.key(["api_keys:write", "api_keys:read", "backups:read"]);
    const created = await request(`/v1/organizations/${tenant.organizationId}/api-keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: labels[0], scopes: ["backups:read"] }),
    });

    // assess: every job completed, each backup with its label, the odd table dumped and counted
    for (const j of settled) expect(j, JSON.stringify(j)).toMatchObject({ state: "completed" });
    const list = await request(`/v1/projects/${tenant.projectId}/backups`, { headers: { authorization: `Bearer ${key}` } });
    expect(list.res.status, list.text).toBe(200);
    const listed = (JSON.parse(list.text) as { backups: { label: string; state: string }[] }).backups;
    expect(listed.map((b) => b.label).sort()).toEqual([...labels].sort());
    expect(listed.every((b) => b.state === "completed")).toBe(true);
    const backup = await backupOf(env.deps, settled[0]!);
    expect(backup.row_counts).toEqual({ "public.x": 2, [`s"; DROP TABLE x; --.t$(touch ${pwned})`]: 3 });
    expect(put.res.status, put.text).toBe(200);
    expect(JSON.parse(put.text).scheduled_backup.label).toBe(labels[0]);
    expect(created.res.status, created.text).toBe(201);
    expect(JSON.parse(created.text).api_key.name).toBe(labels[0]);
    // nothing was dropped, nothing was run
    expect(await env.query(tenant.database, "SELECT count(*)::int AS n FROM x")).toEqual([{ n: 2 }]);
    expect(existsSync(pwned), `${pwned} was created: a label or name reached a shell`).toBe(false);
  }, 90_000);
});

describe("the canary password", () => {
  it("is redacted from what a failing tool prints: job fields, API responses, logs and stored items", async () => {
    // prepare: a pg_dump that prints the password every way a tool might, then fails
    const tools = await wrappedInstallation(join(dir, "pg-leaky"), {
      pg_dump: [
        `echo "pg_dump: error: connection to server at \\"$PGHOST\\", port $PGPORT failed: password=$PGPASSWORD" >&2`,
        `echo "postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$PGDATABASE" >&2`,
        `echo "the password is $PGPASSWORD" >&2; echo "$PGPASSWORD"`,
        "exit 1",
      ].join("\n"),
    });
    const tenant = await env.seedTenant({ database: await env.createDatabase({ prefix: "canary" }), clusterUrl });
    const job = await postBackup(env, tenant);

    // act: every attempt fails the same way (transient: unrecognised), until attempts run out
    const [settled] = await runQueueUntilSettled({ ...env.deps, pgBinDirs: [tools] }, [job.id], { ...fastOptions, retryBaseSeconds: 1, retryMaxSeconds: 2 });

    // assess: the failure is reported, the password is not
    expect(settled, JSON.stringify(settled)).toMatchObject({ state: "failed", attempts: 3 });
    expect(settled!.last_stderr).toContain("the password is ***");
    const key = await tenant.key();
    const auth = { authorization: `Bearer ${key}` };
    for (const path of [`/v1/jobs/${job.id}`, `/v1/projects/${tenant.projectId}/jobs`, `/v1/projects/${tenant.projectId}/backups`, "/v1/me"]) {
      const { res, text } = await request(path, { headers: auth });
      expect(res.status, text).toBe(200);
    }
    expect(canarySightings("job", [JSON.stringify(await getJobItem(env.deps, job.id))])).toEqual([]);
    expect(canarySightings("log", logLines)).toEqual([]);
    expect(canarySightings("response", responses)).toEqual([]);
  }, 60_000);
});
