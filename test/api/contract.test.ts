import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPreview } from "../../core/previews/previews.ts";
import { getProject } from "../../core/orgs/orgs.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { body } from "../support/spec.ts";

/**
 * The wire contract, checked against the app itself: every response schema of every route in the
 * OpenAPI document (which the handlers' schemas generate) and live answers of the routes CapyDB's
 * clients call, compared with `test/support/contract.json`: a copy of the shared contract the
 * clients were checked against (SPEC sections 1, 5, 6), kept in the repository so this test runs
 * on a fresh clone. A field renamed, added, dropped, retyped or made nullable fails here.
 */
const contract = JSON.parse(readFileSync(new URL("../support/contract.json", import.meta.url), "utf8")) as Record<string, string[] | string>;
const kinds = Object.entries(contract).filter((e): e is [string, string[]] => Array.isArray(e[1]));

/** What each field must be beyond its name, where the contract or SPEC says (the rest: a string, or null where allowed). */
const numbers = new Set([
  "cron_hour",
  "cron_minute",
  "retention_days",
  "size_bytes",
  "attempts",
  "max_attempts",
  "last_exit_code",
  "storage_limit_bytes",
  "max_connections",
  "direct_port",
  "pooled_port",
  "response_status",
  "window_days",
  "lag_seconds",
]);
const booleans = new Set(["is_active", "always_on", "restore_time_clamped", "available"]);
/** Fields the clients need present (SPEC 5: the numbers and the boolean of a project, a preview's ports). */
const neverNull: Record<string, string[]> = {
  Project: [
    "id",
    "organization_id",
    "name",
    "slug",
    "environment",
    "database_name",
    "state",
    "plan",
    "always_on",
    "runtime_status",
    "storage_limit_bytes",
    "max_connections",
    "direct_port",
    "pooled_port",
    "created_at",
    "updated_at",
  ],
  Preview: [
    "id",
    "organization_id",
    "project_id",
    "name",
    "mode",
    "state",
    "database_name",
    "role_name",
    "direct_port",
    "pooled_port",
    "source_kind",
    "ttl_expires_at",
    "created_at",
    "updated_at",
  ],
  Organization: ["id", "name", "slug", "billing_plan", "billing_status", "billing_provider", "created_at", "updated_at"],
  WebhookDelivery: ["id", "organization_id", "endpoint_id", "event_type", "payload", "state", "attempts", "max_attempts", "created_at", "updated_at"],
  CliLoginPoll: ["session_id", "state", "expires_at"],
  CliLoginSession: ["session_id", "poll_token", "state", "expires_at", "verification_url"],
};

type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  $ref?: string;
  anyOf?: Schema[];
  oneOf?: Schema[];
  nullable?: boolean;
};

let env: TestEnv;
let tenant: Tenant;
let doc: {
  components: { schemas: Record<string, Schema> };
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>>;
};

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "contract_db" });
  doc = await body(await env.app().request("/v1/openapi.json"));
});
afterAll(async () => env?.cleanup());

const deref = (s: Schema): Schema => (s.$ref ? deref(doc.components.schemas[s.$ref.replace("#/components/schemas/", "")]!) : s);
const typesOf = (s: Schema): string[] => {
  const d = deref(s);
  if (d.anyOf || d.oneOf) return (d.anyOf ?? d.oneOf)!.flatMap(typesOf);
  return [d.type ?? "any"].flat().concat(d.nullable ? ["null"] : []);
};

describe("wire contract (test/support/contract.json)", () => {
  it("every component the contract names carries exactly its fields, with the types and nullability the clients decode", () => {
    for (const [kind, fields] of kinds) {
      const schema = doc.components.schemas[kind];
      if (!schema) continue; // shapes that are not components (the PITR window) are checked where served
      expect(Object.keys(schema.properties ?? {}).sort(), kind).toEqual([...fields].sort());
      expect([...(schema.required ?? [])].sort(), `${kind}: every field present`).toEqual([...fields].sort());
      for (const [field, prop] of Object.entries(schema.properties ?? {})) {
        const types = typesOf(prop);
        if (numbers.has(field))
          expect(
            types.filter((t) => t !== "null"),
            `${kind}.${field}`,
          ).toEqual(expect.arrayContaining([expect.stringMatching(/^(integer|number)$/)]));
        if (booleans.has(field))
          expect(
            types.filter((t) => t !== "null"),
            `${kind}.${field}`,
          ).toEqual(["boolean"]);
        if (neverNull[kind]?.includes(field)) expect(types, `${kind}.${field} must never be null`).not.toContain("null");
      }
    }
    // The components the clients read exist.
    for (const kind of ["Project", "Preview", "Organization", "WebhookDelivery", "Job", "Backup", "CliLoginSession", "CliLoginPoll"])
      expect(doc.components.schemas[kind], kind).toBeDefined();
  });

  it("every route's answer that carries a contract resource carries the component itself, never an inline copy", () => {
    const names = new Set(kinds.map(([k]) => k));
    const inline: string[] = [];
    const walk = (s: Schema, where: string) => {
      if (s.$ref) return;
      if (s.items) walk(s.items, `${where}[]`);
      for (const [k, v] of Object.entries(s.properties ?? {})) {
        const d = v.$ref ? undefined : v.items?.$ref ? undefined : v;
        // An inline object whose fields are a contract resource's is drift waiting to happen.
        if (d?.properties) {
          const keys = Object.keys(d.properties).sort().join(",");
          for (const [kind, fields] of kinds) if (names.has(kind) && [...fields].sort().join(",") === keys) inline.push(`${where}.${k} (${kind})`);
          walk(d, `${where}.${k}`);
        }
      }
    };
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, res] of Object.entries(op.responses)) {
          const schema = res.content?.["application/json"]?.schema;
          if (schema && status.startsWith("2")) walk(schema, `${method.toUpperCase()} ${path} ${status}`);
        }
      }
    }
    expect(inline).toEqual([]);
  });

  it("live answers of projects, previews, organizations, jobs and the login flow match the contract, value by value", async () => {
    const key = await tenant.key(["projects:read", "projects:write", "organizations:read", "backups:read", "jobs:read"]);
    const get = async (path: string) => body(await env.app().request(path, { headers: { authorization: `Bearer ${key}` } }));
    const project = (await getProject(env.deps, tenant.projectId))!;
    const { job } = await createPreview({ ...env.deps, previewLimit: 5 }, project, {
      name: "contract",
      mode: "empty",
      backupId: null,
      jobType: "branch.create",
    });
    const check = (kind: string, value: Record<string, unknown>) => {
      const fields = contract[kind] as string[];
      expect(Object.keys(value).sort(), `${kind} ${JSON.stringify(value)}`).toEqual([...fields].sort());
      const props = doc.components.schemas[kind]!.properties!;
      for (const [field, v] of Object.entries(value)) {
        const types = typesOf(props[field]!);
        const actual = v === null ? "null" : Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v;
        const ok = types.includes(actual) || (actual === "integer" && types.includes("number")) || types.includes("any");
        expect(ok, `${kind}.${field} is ${actual}, the contract says ${types.join(" | ")}`).toBe(true);
      }
    };
    for (const p of (await get("/v1/projects")).projects) check("Project", p);
    check("Project", (await get(`/v1/projects/${tenant.projectId}`)).project);
    for (const p of (await get(`/v1/projects/${tenant.projectId}/preview-databases`)).preview_databases) check("Preview", p);
    check("Preview", (await get(`/v1/preview-databases/${job.preview_database_id}`)).preview);
    check("Organization", (await get(`/v1/organizations/${tenant.organizationId}`)).organization);
    check("Organization", (await get("/v1/me")).organization);
    check("Job", (await get(`/v1/jobs/${job.id}`)).job);
    for (const j of (await get(`/v1/projects/${tenant.projectId}/jobs`)).jobs) check("Job", j);
    const started = await body(
      await env.app().request("/v1/cli/login/sessions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ device_name: "contract" }),
      }),
    );
    check("CliLoginSession", started);
    check(
      "CliLoginPoll",
      await body(await env.app().request(`/v1/cli/login/sessions/${started.session_id}`, { headers: { "x-capydb-poll-token": started.poll_token } })),
    );
  });
});
