import { z } from "../zod.ts";
import { keys } from "../db/keys.ts";
import { getItem, queryAll, setFields, transactWrite, updateItem } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { newId } from "../ids.ts";
import { sslmodeProblem } from "../pg/tls.ts";
import { open, seal } from "./secretbox.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

const nameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "use letters, digits, '.', '_' or '-'");

// ---------------------------------------------------------------------------------------------
// Organization

export const organizationItem = z.object({
  type: z.literal("organization"),
  id: z.string(),
  name: z.string(),
  clerk_organization_id: z.string().nullable(),
  created_at: z.string(),
});
export type Organization = z.infer<typeof organizationItem>;

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
    created_at: iso(now),
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
  created_at: z.string(),
});
export type ClusterItem = z.infer<typeof clusterItem>;
export type Cluster = Omit<ClusterItem, "password_sealed">;

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

export async function getCluster(deps: Db, id: string): Promise<Cluster | undefined> {
  const c = await getItem(deps, clusterItem, keys.cluster(id));
  return c && publicCluster(c);
}

export async function getClusterByName(deps: Db, name: string): Promise<Cluster | undefined> {
  const id = await byName(deps, "cls", "-", name);
  return id ? getCluster(deps, id) : undefined;
}

/** What the worker needs to connect; only ever handed to pg and child process environments. */
export interface ClusterConnection {
  host: string;
  port: number;
  user: string;
  password: string;
  adminDatabase: string;
  /** As registered; the connection's mode comes from core/pg/tls.ts (verify-full unless insecureTls). */
  sslmode: string | null;
  insecureTls?: boolean;
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

export const projectEnvironments = ["production", "non_production"] as const;

/** The Project as the API shows it (SPEC section 5): exactly these fields. */
export const projectSchema = z.object({
  id: z.string(),
  organization_id: z.string(),
  name: z.string(),
  slug: z.string(),
  environment: z.enum(projectEnvironments),
  /** The server's major version ("15"), probed when the project is created; null when unknown. */
  postgres_version: z.string().nullable(),
  database_name: z.string(),
  state: z.literal("ready"),
  created_at: z.string(),
  updated_at: z.string(),
});
export type ProjectView = z.infer<typeof projectSchema>;

/** A URL-safe form of a project name: lowercase letters, digits and single dashes. */
export const slugOf = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "") || "project";

/**
 * The stored project. Fields added after the first projects were written (slug, environment,
 * postgres_version, state, updated_at) read with defaults, so older items stay valid.
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
    created_at: z.string(),
    updated_at: z.string().optional(),
  })
  .transform((p) => ({ ...p, slug: p.slug ?? slugOf(p.name), updated_at: p.updated_at ?? p.created_at }));
/** A project as stored, older shapes included (the newer fields may be absent). */
export type Project = z.input<typeof projectItem>;

export const toProject = (p: Project): ProjectView => projectSchema.parse(projectItem.parse(p));

export const createProjectInput = z.object({
  organization_id: z.string().min(1),
  cluster_id: z.string().min(1),
  name: nameSchema,
  database_name: z.string().min(1).max(63),
  environment: z.enum(projectEnvironments).default("production"),
  postgres_version: z.string().regex(/^\d+(\.\d+)?$/, "must be a version like 15 or 9.6").nullable().default(null),
});

export async function createProject(deps: Db, input: z.input<typeof createProjectInput>): Promise<Project> {
  const data = createProjectInput.parse(input);
  if (!(await getOrganization(deps, data.organization_id))) throw new AppError("not_found", `organization ${data.organization_id} does not exist`);
  if (!(await getCluster(deps, data.cluster_id))) throw new AppError("not_found", `cluster ${data.cluster_id} does not exist`);
  const now = deps.now();
  const project: z.output<typeof projectItem> = {
    type: "project",
    id: newId("project", now),
    ...data,
    slug: slugOf(data.name),
    state: "ready",
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
