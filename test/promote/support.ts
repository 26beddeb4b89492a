import type { Tenant, TestEnv } from "../support/env.ts";
import { uniq } from "../support/env.ts";
import pg from "pg";
import { expect } from "vitest";
import { createApproval, type ApprovalAction } from "../../core/approvals/approvals.ts";
import { keys } from "../../core/db/keys.ts";
import { getJobItem, type JobItem } from "../../core/jobs/jobs.ts";
import { getPreview, previewPassword, type PreviewItem } from "../../core/previews/previews.ts";
import { body } from "../support/spec.ts";
import { postBackup, runQueueUntilSettled } from "../worker/support.ts";
import { GetCommand } from "@aws-sdk/lib-dynamodb";

export const APP_PASSWORD = "app-password-1";

/** The application: a login role that owns the project's database and everything in it (as on CapyDB). */
export interface AppProject {
  tenant: Tenant;
  role: string;
  database: string;
}

/** A project whose database belongs to its own application role, with two tables, a sequence and a foreign key. */
export async function appProject(env: TestEnv, opts: { environment?: "production" | "non_production" } = {}): Promise<AppProject> {
  const role = uniq("app").replace(/-/g, "_");
  await env.query("postgres", `CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN PASSWORD '${APP_PASSWORD}'`);
  const database = await env.createDatabase({ prefix: "prm" });
  await env.query("postgres", `ALTER DATABASE ${pg.escapeIdentifier(database)} OWNER TO ${pg.escapeIdentifier(role)}`);
  const c = as(env, role, database);
  await c.connect();
  await c.query(`CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL)`);
  await c.query(`CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers(id), total numeric, note text)`);
  await c.query(`INSERT INTO customers (name) SELECT 'old-' || g FROM generate_series(1, 50) g`);
  await c.query(`INSERT INTO orders (customer_id, total, note) SELECT 1 + g % 50, g * 1.5, 'old' FROM generate_series(1, 400) g`);
  await c.end();
  const tenant = await env.seedTenant({ database });
  if (opts.environment) {
    const { UpdateCommand } = await import("@aws-sdk/lib-dynamodb");
    await env.deps.ddb.send(
      new UpdateCommand({
        TableName: env.deps.table,
        Key: keys.project(tenant.projectId),
        UpdateExpression: "SET environment = :e",
        ExpressionAttributeValues: { ":e": opts.environment },
      }),
    );
  }
  return { tenant, role, database };
}

export function as(env: TestEnv, user: string, database: string, password = APP_PASSWORD): pg.Client {
  const u = new URL(env.infra.postgresUrl);
  const c = new pg.Client({ host: u.hostname, port: Number(u.port), user, password, database });
  c.on("error", () => undefined);
  return c;
}

/** Each table's rows hashed in key order: equal hashes, equal data. */
export async function rowHashes(client: pg.Client): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of ["customers", "orders"]) {
    const { rows } = await client.query<{ h: string; n: string }>(`SELECT md5(string_agg(x::text, '|' ORDER BY x.id)) AS h, count(*) AS n FROM ${t} x`);
    out[t] = `${rows[0]!.n}:${rows[0]!.h}`;
  }
  return out;
}

export async function hashesOf(env: TestEnv, database: string): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: env.pgUrl(database) });
  await c.connect();
  try {
    return await rowHashes(c);
  } finally {
    await c.end();
  }
}

export async function hashesAs(env: TestEnv, user: string, database: string, password = APP_PASSWORD) {
  const c = as(env, user, database, password);
  await c.connect();
  try {
    return await rowHashes(c);
  } finally {
    await c.end();
  }
}

/** A verified backup of the project (through the worker). */
export async function verifiedBackup(env: TestEnv, tenant: Tenant): Promise<JobItem> {
  const job = await postBackup(env, tenant);
  const [made] = await runQueueUntilSettled(env.deps, [job.id]);
  expect(made?.state, JSON.stringify(made)).toBe("completed");
  return made!;
}

/** A ready preview restored from `backup`, then changed by its own role (so it differs from the project). */
export async function changedPreview(env: TestEnv, p: AppProject, backup: JobItem): Promise<PreviewItem> {
  const key = await p.tenant.key(["backups:read", "backups:write", "projects:read", "projects:write", "jobs:read"]);
  const res = await env.app().request(`/v1/projects/${p.tenant.projectId}/restores`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ backup_key: `projects/${p.tenant.projectId}/backups/${backup.backup_id}.dump` }),
  });
  const { job } = await body(res);
  expect(res.status, JSON.stringify(job)).toBe(202);
  const [done] = await runQueueUntilSettled(env.deps, [job.id]);
  expect(done?.state, JSON.stringify(done)).toBe("completed");
  const preview = (await getPreview(env.deps, job.preview_database_id))!;
  expect(preview.state).toBe("ready");
  const c = as(env, preview.role_name, preview.database_name, previewPassword(env.deps, preview));
  await c.connect();
  await c.query("UPDATE customers SET name = 'new-' || id WHERE id % 2 = 0");
  await c.query("DELETE FROM orders WHERE id > 300");
  await c.query("INSERT INTO orders (customer_id, total, note) SELECT 1 + g % 50, g, 'new' FROM generate_series(1, 25) g");
  await c.end();
  return preview;
}

export async function approval(env: TestEnv, projectId: string, organizationId: string, action: ApprovalAction = "project.promote_preview"): Promise<string> {
  const a = await createApproval(env.deps, {
    project: { id: projectId, organization_id: organizationId },
    action,
    actor: { kind: "operator", id: "test-operator" },
  });
  return a.token;
}

export async function promoteRequest(env: TestEnv, key: string, previewId: string, token: string | undefined) {
  const res = await env.app().request(`/v1/preview-databases/${previewId}/promote`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(token === undefined ? {} : { approval_token: token }),
  });
  return { res, json: await body(res) };
}

/** The stored promotion item of a job (phases, plan, the ids it made). */
export async function promotionOf(env: TestEnv, jobId: string) {
  const res = await env.deps.ddb.send(new GetCommand({ TableName: env.deps.table, Key: keys.promotion(jobId) }));
  return res.Item as Record<string, unknown> & {
    safety_backup_id: string;
    parked_preview_id: string;
    phase: string;
    safety_job_id: string | null;
    incoming_database: string;
    parked_database: string;
  };
}

export const jobOf = async (env: TestEnv, id: string) => (await getJobItem(env.deps, id))!;

/** Databases of `names` that exist on the test cluster. */
export async function existing(env: TestEnv, names: string[]): Promise<string[]> {
  const rows = await env.query<{ datname: string }>("postgres", "SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY datname", [names]);
  return rows.map((r) => r.datname);
}

/** Whether the database accepts connections (datallowconn). */
export async function allowsConnections(env: TestEnv, database: string): Promise<boolean> {
  const [row] = await env.query<{ a: boolean }>("postgres", "SELECT datallowconn AS a FROM pg_database WHERE datname = $1", [database]);
  return Boolean(row?.a);
}
