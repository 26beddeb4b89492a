import { z } from "../zod.ts";
import { organizationSchema } from "../contract/organizations.ts";
import { projectEnvironments, projectSchema } from "../contract/projects.ts";
import { keys } from "../db/keys.ts";
import { getItem, queryAll, setFields, transactWrite, updateItem } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { newId } from "../ids.ts";
import type { ClusterConnection } from "../pg/pgconn.ts";
import { sslmodeProblem } from "../pg/tls.ts";
import { open, seal } from "./secretbox.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

/** The settings actually given (an absent one stays as it is; `null` clears it). */
const defined = <T extends Record<string, unknown>>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

const nameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "use letters, digits, '.', '_' or '-'");

// ---------------------------------------------------------------------------------------------
// Organization

/**
 * Billing as CapyDB's clients read it. This service bills nobody: an organization is on the
 * `standard` plan, `active`, billed `manual`ly by the operators, until an operator records
 * otherwise with `capydb-admin org set`.
 */
export const DEFAULT_BILLING = { billing_plan: "standard", billing_status: "active", billing_provider: "manual" } as const;

/**
 * The stored organization. Fields added after the first organizations were written (billing,
 * the Clerk slug, suspension, updated_at) read with defaults, so older items stay valid.
 */
export const organizationItem = z
  .object({
    type: z.literal("organization"),
    id: z.string(),
    name: z.string(),
    clerk_organization_id: z.string().nullable(),
    clerk_organization_slug: z.string().nullable().default(null),
    billing_plan: z.string().default(DEFAULT_BILLING.billing_plan),
    billing_status: z.string().default(DEFAULT_BILLING.billing_status),
    billing_provider: z.string().default(DEFAULT_BILLING.billing_provider),
    suspended_at: z.string().nullable().default(null),
    created_at: z.string(),
    updated_at: z.string().optional(),
  })
  .transform((o) => ({ ...o, updated_at: o.updated_at ?? o.created_at }));
export type Organization = z.output<typeof organizationItem>;

export type OrganizationView = z.infer<typeof organizationSchema>;

export const toOrganization = (o: Organization): OrganizationView => organizationSchema.parse({ ...o, slug: slugOf(o.name) });

export const createOrganizationInput = z.object({
  name: nameSchema,
  clerk_organization_id: z.string().min(1).nullable().default(null),
});

/** Creates an organization; names are unique (a guard item in the same transaction). */
export async function createOrganization(deps: Db, input: z.input<typeof createOrganizationInput>): Promise<Organization> {
  const data = createOrganizationInput.parse(input);
  const now = deps.now();
  const org: Organization = {
    type: "organization",
    id: newId("organization", now),
    name: data.name,
    clerk_organization_id: data.clerk_organization_id,
    clerk_organization_slug: null,
    ...DEFAULT_BILLING,
    suspended_at: null,
    created_at: iso(now),
    updated_at: iso(now),
  };
  await transactWrite(
    deps,
    [
      { Put: { TableName: deps.table, Item: { ...keys.nameGuard("org", "-", org.name), ref: org.id }, ConditionExpression: "attribute_not_exists(pk)" } },
      {
        Put: {
          TableName: deps.table,
          Item: {
            ...keys.organization(org.id),
            ...org,
            ...(org.clerk_organization_id ? { gsi1pk: keys.clerkOrgIndex(org.clerk_organization_id), gsi1sk: "ORG" } : {}),
          },
        },
      },
    ],
    `an organization named ${org.name} already exists`,
  );
  return org;
}

export async function getOrganization(deps: Db, id: string): Promise<Organization | undefined> {
  return getItem(deps, organizationItem, keys.organization(id));
}

/** What an operator records about an organization that only they know (`capydb-admin org set`). */
export const organizationSettingsInput = z
  .object({
    billing_plan: z.string().min(1).max(100),
    billing_status: z.string().min(1).max(100),
    billing_provider: z.string().min(1).max(100),
    clerk_organization_slug: z.string().min(1).max(200).nullable(),
    suspended_at: z.iso.datetime().nullable(),
  })
  .partial()
  .strict();

export async function updateOrganizationSettings(deps: Db, id: string, input: z.input<typeof organizationSettingsInput>): Promise<Organization> {
  const data = defined(organizationSettingsInput.parse(input));
  if (!Object.keys(data).length) throw new AppError("bad_request", "nothing to change: give at least one setting");
  if (!(await getOrganization(deps, id))) throw new AppError("not_found", `organization ${id} does not exist`);
  const set = setFields({ ...data, updated_at: iso(deps.now()) });
  return updateItem(
    deps,
    organizationItem,
    { Key: keys.organization(id), ...set, ConditionExpression: "attribute_exists(pk)" },
    `organization ${id} does not exist`,
  );
}

const guardItem = z.object({ ref: z.string() });

async function byName(deps: Db, kind: string, scope: string, name: string): Promise<string | undefined> {
  return (await getItem(deps, guardItem, keys.nameGuard(kind, scope, name)))?.ref;
}

export async function getOrganizationByName(deps: Db, name: string): Promise<Organization | undefined> {
  const id = await byName(deps, "org", "-", name);
  return id ? getOrganization(deps, id) : undefined;
}

export async function getOrganizationByClerkId(deps: Db, clerkOrgId: string): Promise<Organization | undefined> {
  const [org] = await queryAll(
    deps,
    organizationItem,
    { IndexName: "gsi1", KeyConditionExpression: "gsi1pk = :p", ExpressionAttributeValues: { ":p": keys.clerkOrgIndex(clerkOrgId) } },
    1,
  );
  return org;
}

// ---------------------------------------------------------------------------------------------
// Cluster: a PostgreSQL server hosting project databases. Its password is stored sealed and is
// never part of any API response or log line.

export const clusterItem = z.object({
  type: z.literal("cluster"),
  id: z.string(),
  name: z.string(),
  host: z.string(),
  port: z.number().int(),
  user: z.string(),
  password_sealed: z.string(),
  /** Database to connect to for administrative statements (CREATE/DROP DATABASE, version). */
  admin_database: z.string(),
  sslmode: z.string().nullable(),
  /**
   * The explicit opt-out of verified TLS (core/pg/tls.ts): only then does the worker connect in
   * plaintext or without checking the certificate, in the URL's sslmode. Absent on clusters
   * registered before it existed, which therefore connect verify-full.
   */
  insecure_tls: z.boolean().default(false),
  /** Where the cluster runs (an AWS region name); null when the operator did not say. */
  region: z.string().nullable().default(null),
  /** The host clients connect to, when it differs from the one the service uses (a private address). */
  public_host: z.string().nullable().default(null),
  /** The port of a connection pooler in front of the cluster; null: there is none. */
  pooler_port: z.number().int().nullable().default(null),
  created_at: z.string(),
});
export type ClusterItem = z.infer<typeof clusterItem>;
export type Cluster = Omit<ClusterItem, "password_sealed">;

const portSchema = z.number().int().min(1).max(65535);
/** What an operator records about a cluster beside its connection URL. */
export const clusterSettingsInput = z.object({
  region: z.string().min(1).max(64).nullable(),
  public_host: z.string().min(1).max(253).nullable(),
  pooler_port: portSchema.nullable(),
});

export const createClusterInput = z.object({
  name: nameSchema,
  /** `postgres://user:password@host:port/admin_db?sslmode=...` */
  url: z.string().refine((u) => {
    try {
      const p = new URL(u);
      return (p.protocol === "postgres:" || p.protocol === "postgresql:") && p.hostname !== "" && p.username !== "";
    } catch {
      return false;
    }
  }, "must be a postgres:// URL with a user and a host"),
  /** Allow plaintext or unverified TLS (sslmode disable, allow, prefer, require, verify-ca) for this cluster. */
  insecure_tls: z.boolean().default(false),
  ...clusterSettingsInput.partial().shape,
});

export function publicCluster(c: ClusterItem): Cluster {
  const { password_sealed: _omit, ...rest } = c;
  return rest;
}

/** The connection a new cluster's URL describes, checked as `createCluster` checks it (shape, TLS mode). */
export function newClusterConnection(input: z.input<typeof createClusterInput>): ClusterConnection {
  const data = createClusterInput.parse(input);
  const url = new URL(data.url);
  const tlsProblem = sslmodeProblem(url.searchParams.get("sslmode"), data.insecure_tls);
  if (tlsProblem) throw new AppError("bad_request", `url: ${tlsProblem}`);
  return {
    host: decodeURIComponent(url.hostname),
    port: url.port ? Number(url.port) : 5432,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    adminDatabase: decodeURIComponent(url.pathname.replace(/^\//, "")) || "postgres",
    sslmode: url.searchParams.get("sslmode"),
    insecureTls: data.insecure_tls,
  };
}

export async function createCluster(deps: Db & Pick<Deps, "secretKey">, input: z.input<typeof createClusterInput>): Promise<Cluster> {
  const data = createClusterInput.parse(input);
  const url = new URL(data.url);
  newClusterConnection(input); // the same checks
  const now = deps.now();
  const item: ClusterItem = {
    type: "cluster",
    id: newId("cluster", now),
    name: data.name,
    host: decodeURIComponent(url.hostname),
    port: url.port ? Number(url.port) : 5432,
    user: decodeURIComponent(url.username),
    password_sealed: seal(deps.secretKey, decodeURIComponent(url.password)),
    admin_database: decodeURIComponent(url.pathname.replace(/^\//, "")) || "postgres",
    sslmode: url.searchParams.get("sslmode"),
    insecure_tls: data.insecure_tls,
    region: data.region ?? null,
    public_host: data.public_host ?? null,
    pooler_port: data.pooler_port ?? null,
    created_at: iso(now),
  };
  await transactWrite(
    deps,
    [
      { Put: { TableName: deps.table, Item: { ...keys.nameGuard("cls", "-", item.name), ref: item.id }, ConditionExpression: "attribute_not_exists(pk)" } },
      { Put: { TableName: deps.table, Item: { ...keys.cluster(item.id), ...item } } },
    ],
    `a cluster named ${item.name} already exists`,
  );
  return publicCluster(item);
}

/**
 * Turns a cluster's opt-out of verified TLS on or off (the local stack's cluster, registered before
 * the opt-out existed, is given it at start; an operator uses it to move a cluster either way).
 */
export async function setClusterInsecureTls(deps: Db, id: string, insecureTls: boolean): Promise<Cluster> {
  const item = await updateItem(deps, clusterItem, {
    Key: keys.cluster(id),
    ConditionExpression: "attribute_exists(pk)",
    ...setFields({ insecure_tls: insecureTls }),
  });
  return publicCluster(item);
}

/**
 * Points a cluster at a new host and port (its credentials unchanged): the local stack's cluster
 * when `npm start` gives PostgreSQL another port (CAPYDB_PG_PORT), an operator's after a failover.
 */
export async function setClusterAddress(deps: Db, id: string, address: { host: string; port: number }): Promise<Cluster> {
  const data = z.object({ host: z.string().min(1).max(253), port: portSchema }).parse(address);
  const item = await updateItem(
    deps,
    clusterItem,
    { Key: keys.cluster(id), ConditionExpression: "attribute_exists(pk)", ...setFields(data) },
    `cluster ${id} does not exist`,
  );
  return publicCluster(item);
}

export async function getCluster(deps: Db, id: string): Promise<Cluster | undefined> {
  const c = await getItem(deps, clusterItem, keys.cluster(id));
  return c && publicCluster(c);
}

export async function updateClusterSettings(deps: Db, id: string, input: z.input<ReturnType<typeof clusterSettingsInput.partial>>): Promise<Cluster> {
  const data = defined(clusterSettingsInput.partial().strict().parse(input));
  if (!Object.keys(data).length) throw new AppError("bad_request", "nothing to change: give at least one setting");
  if (!(await getCluster(deps, id))) throw new AppError("not_found", `cluster ${id} does not exist`);
  const item = await updateItem(
    deps,
    clusterItem,
    { Key: keys.cluster(id), ...setFields(data), ConditionExpression: "attribute_exists(pk)" },
    `cluster ${id} does not exist`,
  );
  return publicCluster(item);
}

export async function getClusterByName(deps: Db, name: string): Promise<Cluster | undefined> {
  const id = await byName(deps, "cls", "-", name);
  return id ? getCluster(deps, id) : undefined;
}

export async function getClusterConnection(deps: Db & Pick<Deps, "secretKey">, id: string): Promise<ClusterConnection> {
  const c = await getItem(deps, clusterItem, keys.cluster(id));
  if (!c) throw new AppError("not_found", `cluster ${id} does not exist`);
  return {
    host: c.host,
    port: c.port,
    user: c.user,
    password: open(deps.secretKey, c.password_sealed),
    adminDatabase: c.admin_database,
    sslmode: c.sslmode,
    insecureTls: c.insecure_tls,
  };
}

// ---------------------------------------------------------------------------------------------
// Project: one database on one cluster, owned by an organization.

export type ProjectView = z.infer<typeof projectSchema>;

/** A URL-safe form of a project name: lowercase letters, digits and single dashes. */
export const slugOf = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "") || "project";

/**
 * What is known of a project's database beside where it lives: probed from the server when the
 * project is created (max_connections, the database's owner) or recorded by an operator
 * (`capydb-admin project set`). Null: not recorded; the API then answers the cluster's value or
 * the documented default.
 */
export const projectSettingsInput = z.object({
  region: z.string().min(1).max(64).nullable(),
  plan: z.string().min(1).max(100),
  always_on: z.boolean(),
  runtime_status: z.string().min(1).max(100),
  storage_limit_bytes: z.number().int().min(0),
  max_connections: z.number().int().min(1).nullable(),
  direct_port: portSchema.nullable(),
  pooled_port: portSchema.nullable(),
  role_name: z.string().min(1).max(63).nullable(),
  public_host: z.string().min(1).max(253).nullable(),
  ssl_mode: z.enum(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]).nullable(),
  statement_timeout: z.string().min(1).max(32).nullable(),
  idle_transaction_timeout: z.string().min(1).max(32).nullable(),
  last_error: z.string().max(2000).nullable(),
});

/** Stable values for what neither the server nor an operator told us (documented in docs/api.md). */
export const PROJECT_DEFAULTS = {
  plan: "standard",
  always_on: true,
  runtime_status: "running",
  /** 0: no storage limit is enforced by the service. */
  storage_limit_bytes: 0,
  /** PostgreSQL's own default. */
  max_connections: 100,
  /** PostgreSQL's own default port. */
  port: 5432,
} as const;

/**
 * The stored project. Fields added after the first projects were written (slug, environment,
 * postgres_version, state, updated_at, the settings) read with defaults, so older items stay valid.
 */
export const projectItem = z
  .object({
    type: z.literal("project"),
    id: z.string(),
    organization_id: z.string(),
    cluster_id: z.string(),
    name: z.string(),
    database_name: z.string(),
    slug: z.string().optional(),
    environment: z.enum(projectEnvironments).default("production"),
    postgres_version: z.string().nullable().default(null),
    state: z.literal("ready").default("ready"),
    region: z.string().nullable().default(null),
    plan: z.string().default(PROJECT_DEFAULTS.plan),
    always_on: z.boolean().default(PROJECT_DEFAULTS.always_on),
    runtime_status: z.string().default(PROJECT_DEFAULTS.runtime_status),
    storage_limit_bytes: z.number().int().default(PROJECT_DEFAULTS.storage_limit_bytes),
    max_connections: z.number().int().nullable().default(null),
    direct_port: z.number().int().nullable().default(null),
    pooled_port: z.number().int().nullable().default(null),
    role_name: z.string().nullable().default(null),
    public_host: z.string().nullable().default(null),
    ssl_mode: z.string().nullable().default(null),
    statement_timeout: z.string().nullable().default(null),
    idle_transaction_timeout: z.string().nullable().default(null),
    last_error: z.string().nullable().default(null),
    created_at: z.string(),
    updated_at: z.string().optional(),
  })
  .transform((p) => ({ ...p, slug: p.slug ?? slugOf(p.name), updated_at: p.updated_at ?? p.created_at }));
/** A project as stored, older shapes included (the newer fields may be absent). */
export type Project = z.input<typeof projectItem>;

/**
 * The API's view of a project. Connection facts the project does not record come from its
 * cluster (`cluster`: its port, host, sslmode, region and pooler); `latestJobId` is its newest job.
 */
export function toProject(p: Project, context: { cluster?: Cluster; latestJobId?: string | null } = {}): ProjectView {
  const item = projectItem.parse(p);
  const { cluster } = context;
  const directPort = item.direct_port ?? cluster?.port ?? PROJECT_DEFAULTS.port;
  return projectSchema.parse({
    ...item,
    region: item.region ?? cluster?.region ?? null,
    max_connections: item.max_connections ?? PROJECT_DEFAULTS.max_connections,
    direct_port: directPort,
    // Without a pooler, pooled connections go straight to the server: the clients need a number.
    pooled_port: item.pooled_port ?? cluster?.pooler_port ?? directPort,
    public_host: item.public_host ?? cluster?.public_host ?? cluster?.host ?? null,
    ssl_mode: item.ssl_mode ?? cluster?.sslmode ?? null,
    latest_job_id: context.latestJobId ?? null,
    primary_instance_id: item.cluster_id,
  });
}

export async function updateProjectSettings(deps: Db, id: string, input: z.input<ReturnType<typeof projectSettingsInput.partial>>): Promise<Project> {
  const data = defined(projectSettingsInput.partial().strict().parse(input));
  if (!Object.keys(data).length) throw new AppError("bad_request", "nothing to change: give at least one setting");
  if (!(await getProject(deps, id))) throw new AppError("not_found", `project ${id} does not exist`);
  return updateItem(
    deps,
    projectItem,
    { Key: keys.project(id), ...setFields({ ...data, updated_at: iso(deps.now()) }), ConditionExpression: "attribute_exists(pk)" },
    `project ${id} does not exist`,
  );
}

export const createProjectInput = z.object({
  organization_id: z.string().min(1),
  cluster_id: z.string().min(1),
  name: nameSchema,
  database_name: z.string().min(1).max(63),
  environment: z.enum(projectEnvironments).default("production"),
  postgres_version: z
    .string()
    .regex(/^\d+(\.\d+)?$/, "must be a version like 15 or 9.6")
    .nullable()
    .default(null),
  /** Probed from the server at creation when it can be reached. */
  max_connections: z.number().int().min(1).nullable().default(null),
  role_name: z.string().min(1).max(63).nullable().default(null),
});

export async function createProject(deps: Db, input: z.input<typeof createProjectInput>): Promise<Project> {
  const data = createProjectInput.parse(input);
  if (!(await getOrganization(deps, data.organization_id))) throw new AppError("not_found", `organization ${data.organization_id} does not exist`);
  const now = deps.now();
  const cluster = await getCluster(deps, data.cluster_id);
  if (!cluster) throw new AppError("not_found", `cluster ${data.cluster_id} does not exist`);
  const project: z.output<typeof projectItem> = {
    type: "project",
    id: newId("project", now),
    ...data,
    slug: slugOf(data.name),
    state: "ready",
    // The cluster's region when the project was made; the other connection facts follow the cluster.
    region: cluster.region,
    plan: PROJECT_DEFAULTS.plan,
    always_on: PROJECT_DEFAULTS.always_on,
    runtime_status: PROJECT_DEFAULTS.runtime_status,
    storage_limit_bytes: PROJECT_DEFAULTS.storage_limit_bytes,
    direct_port: null,
    pooled_port: null,
    public_host: null,
    ssl_mode: null,
    statement_timeout: null,
    idle_transaction_timeout: null,
    last_error: null,
    created_at: iso(now),
    updated_at: iso(now),
  };
  await transactWrite(
    deps,
    [
      {
        Put: {
          TableName: deps.table,
          Item: { ...keys.nameGuard("prj", data.organization_id, data.name), ref: project.id },
          ConditionExpression: "attribute_not_exists(pk)",
        },
      },
      {
        Put: {
          TableName: deps.table,
          Item: { ...keys.project(project.id), ...project, gsi1pk: keys.orgProjectsIndex(project.organization_id), gsi1sk: project.id },
        },
      },
    ],
    `a project named ${data.name} already exists in this organization`,
  );
  return project;
}

export async function getProject(deps: Db, id: string): Promise<Project | undefined> {
  return getItem(deps, projectItem, keys.project(id));
}

export async function getProjectByName(deps: Db, organizationId: string, name: string): Promise<Project | undefined> {
  const id = await byName(deps, "prj", organizationId, name);
  return id ? getProject(deps, id) : undefined;
}

export async function listProjects(deps: Db, organizationId: string): Promise<Project[]> {
  return queryAll(deps, projectItem, {
    IndexName: "gsi1",
    KeyConditionExpression: "gsi1pk = :p",
    ExpressionAttributeValues: { ":p": keys.orgProjectsIndex(organizationId) },
  });
}
