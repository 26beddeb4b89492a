import { DynamoDBClient, DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { DeleteQueueCommand } from "@aws-sdk/client-sqs";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { createApp, type AppOptions } from "../../core/api/app.ts";
import { s3HealthCheck } from "../../core/api/health-s3.ts";
import { registerConsole } from "../../core/console/routes.tsx";
import { createApiKey } from "../../core/auth/keys.ts";
import type { Scope } from "../../core/auth/scopes.ts";
import { loadConfig } from "../../core/config.ts";
import { createDeps, type Deps } from "../../core/deps.ts";
import { createCluster, createOrganization, createProject } from "../../core/orgs/orgs.ts";
import { ensureDemoDatabase } from "../../local/demo.ts";
import { ensureBucket, ensureQueues, ensureTable } from "../../local/resources.ts";
import { LOCAL_REGION } from "../../local/stack.ts";

export interface TestEnv {
  deps: Deps;
  infra: ReturnType<typeof inject<"infra">>;
  /** Names unique to this file. */
  names: { table: string; queue: string; bucket: string };
  dlqUrl: string;
  /** Superuser URL of the test PostgreSQL, to database `db` (default postgres). */
  pgUrl(db?: string): string;
  /** A fresh database on the test cluster (demo schema and rows when `demo`). */
  createDatabase(opts?: { demo?: boolean; prefix?: string }): Promise<string>;
  query<T extends pg.QueryResultRow = Record<string, unknown>>(db: string, sql: string, params?: unknown[]): Promise<T[]>;
  /** An organization with a cluster (the test PostgreSQL) and a project on `database`. */
  seedTenant(opts?: { database?: string; clusterUrl?: string; clerkOrganizationId?: string }): Promise<Tenant>;
  app(opts?: Partial<AppOptions>): ReturnType<typeof createApp>;
  /** The service's environment variables for this file's resources (for child processes, bundles). */
  serviceEnv(): Record<string, string>;
  cleanup(): Promise<void>;
}

export interface Tenant {
  organizationId: string;
  clusterId: string;
  projectId: string;
  database: string;
  /** A key with the given scopes (default: backups:read, backups:write, jobs:read). */
  key(scopes?: Scope[], opts?: { projectId?: string | null; expiresAt?: string | null }): Promise<string>;
}

export const uniq = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;

/** Per-file environment on the shared stand-ins: its own table, queue (+DLQ) and bucket. */
export async function createTestEnv(overrides: Partial<Deps> = {}): Promise<TestEnv> {
  const infra = inject("infra");
  const names = { table: uniq("t"), queue: uniq("q"), bucket: uniq("b").toLowerCase() };
  const base = { region: LOCAL_REGION, endpoint: infra.endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } };
  const config = loadConfig({
    AWS_REGION: LOCAL_REGION,
    CAPYDB_AWS_ENDPOINT: infra.endpoint,
    CAPYDB_TABLE: names.table,
    CAPYDB_QUEUE_URL: "http://placeholder/q",
    CAPYDB_BUCKET: names.bucket,
    CAPYDB_SECRET_KEY: infra.secretKey,
    CAPYDB_WORKER_ID: uniq("worker"),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "ERROR",
  });
  const deps = createDeps(config, overrides);
  const ddb = new DynamoDBClient(base);
  await ensureTable(ddb, names.table);
  const { queueUrl, dlqUrl } = await ensureQueues(deps.sqs, names.queue, { visibilityTimeoutSeconds: 30 });
  deps.queueUrl = queueUrl;
  deps.dlqUrl = dlqUrl;
  await ensureBucket(deps.s3, names.bucket);

  const databases: string[] = [];
  const pgUrl = (db = "postgres") => {
    const u = new URL(infra.postgresUrl);
    u.pathname = `/${db}`;
    return u.toString();
  };
  const query = async <T extends pg.QueryResultRow>(db: string, sql: string, params?: unknown[]) => {
    const client = new pg.Client({ connectionString: pgUrl(db) });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  };
  const env: TestEnv = {
    deps,
    infra,
    names,
    dlqUrl,
    pgUrl,
    query,
    async createDatabase(opts = {}) {
      const name = uniq(opts.prefix ?? "db").replace(/-/g, "_");
      databases.push(name);
      if (opts.demo) await ensureDemoDatabase(infra.postgresUrl, name);
      else await query("postgres", `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      return name;
    },
    async seedTenant(opts = {}) {
      const database = opts.database ?? (await env.createDatabase({ demo: true }));
      const org = await createOrganization(deps, { name: uniq("org"), clerk_organization_id: opts.clerkOrganizationId ?? null });
      const cluster = await createCluster(deps, { name: uniq("cls"), url: opts.clusterUrl ?? infra.postgresUrl, insecure_tls: true });
      const project = await createProject(deps, { organization_id: org.id, cluster_id: cluster.id, name: uniq("prj"), database_name: database });
      return {
        organizationId: org.id,
        clusterId: cluster.id,
        projectId: project.id,
        database,
        key: async (scopes = ["backups:read", "backups:write", "jobs:read"], o = {}) =>
          (
            await createApiKey(deps, {
              organization_id: org.id,
              name: uniq("key"),
              scopes,
              project_id: o.projectId ?? null,
              expires_at: o.expiresAt ?? null,
            })
          ).key,
      };
    },
    app: (opts = {}) => {
      // As the local stack serves it: the S3 check beside the API's own, and the console (its own function when deployed) on the same origin.
      const app = createApp({ deps, keyCacheMs: 0, ...opts, healthChecks: { s3: s3HealthCheck(opts.deps ?? deps), ...opts.healthChecks } });
      registerConsole(app, { clerk: opts.clerk !== undefined });
      return app;
    },
    serviceEnv: () => ({
      AWS_REGION: LOCAL_REGION,
      CAPYDB_AWS_ENDPOINT: infra.endpoint,
      CAPYDB_TABLE: names.table,
      CAPYDB_QUEUE_URL: queueUrl,
      CAPYDB_DLQ_URL: dlqUrl,
      CAPYDB_BUCKET: names.bucket,
      CAPYDB_SECRET_KEY: infra.secretKey,
    }),
    async cleanup() {
      for (const db of databases) {
        await query("postgres", `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(db)} WITH (FORCE)`).catch(() => undefined);
      }
      await ddb.send(new DeleteTableCommand({ TableName: names.table })).catch(() => undefined);
      await deps.sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
      await deps.sqs.send(new DeleteQueueCommand({ QueueUrl: dlqUrl })).catch(() => undefined);
    },
  };
  return env;
}
