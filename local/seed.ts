import { createApiKey, findApiKey, isKeyActive } from "../core/auth/keys.ts";
import type { Scope } from "../core/auth/scopes.ts";
import type { Deps } from "../core/deps.ts";
import { probeProjectFacts, type ProjectFacts } from "../core/orgs/probe.ts";
import {
  createCluster,
  createOrganization,
  createProject,
  getClusterByName,
  setClusterAddress,
  setClusterInsecureTls,
  getOrganizationByName,
  getProjectByName,
} from "../core/orgs/orgs.ts";

/** Every scope the customer API's routes need (the organization's: webhook endpoints), so the local key can try all of them. */
export const localKeyScopes: readonly Scope[] = [
  "backups:read",
  "backups:write",
  "jobs:read",
  "projects:read",
  "projects:write",
  "credentials:read",
  "organizations:read",
  "organizations:write",
];

export interface SeedResult {
  organizationId: string;
  clusterId: string;
  projectId: string;
  apiKey: string;
}

/**
 * Seeds the local stack through the same core functions capydb-admin uses; idempotent: existing
 * records are found by name, and the key from the previous start is reused while it is valid.
 */
export async function seedLocal(deps: Deps, opts: { clusterUrl: string; databaseName: string; previousApiKey?: string }): Promise<SeedResult> {
  const org = (await getOrganizationByName(deps, "local")) ?? (await createOrganization(deps, { name: "local" }));
  // The local PostgreSQL serves no TLS: its cluster carries the explicit opt-out (core/pg/tls.ts),
  // given at start to a cluster registered before the opt-out existed.
  let cluster = await getClusterByName(deps, "local");
  if (!cluster) cluster = await createCluster(deps, { name: "local", url: opts.clusterUrl, insecure_tls: true });
  if (!cluster.insecure_tls) cluster = await setClusterInsecureTls(deps, cluster.id, true);
  // A start with another CAPYDB_PG_PORT: the cluster record follows PostgreSQL to its new port.
  const url = new URL(opts.clusterUrl);
  const address = { host: decodeURIComponent(url.hostname), port: url.port ? Number(url.port) : 5432 };
  if (cluster.host !== address.host || cluster.port !== address.port) cluster = await setClusterAddress(deps, cluster.id, address);
  const existingProject = await getProjectByName(deps, org.id, "demo");
  const facts: ProjectFacts = existingProject ? {} : await probeProjectFacts(deps, cluster.id, opts.databaseName);
  const project =
    existingProject ??
    (await createProject(deps, {
      organization_id: org.id,
      cluster_id: cluster.id,
      name: "demo",
      database_name: opts.databaseName,
      environment: "non_production",
      postgres_version: facts.postgres_version ?? null,
      max_connections: facts.max_connections ?? null,
      role_name: facts.role_name ?? null,
    }));
  let apiKey = opts.previousApiKey;
  const previous = apiKey ? await findApiKey(deps, apiKey) : undefined;
  const hasScopes = previous ? localKeyScopes.every((s) => previous.scopes.includes(s)) : false;
  if (!apiKey || !previous || !hasScopes || !isKeyActive(previous, deps.now()) || previous.organization_id !== org.id) {
    apiKey = (
      await createApiKey(deps, {
        organization_id: org.id,
        name: "local-dev",
        scopes: [...localKeyScopes],
      })
    ).key;
  }
  return { organizationId: org.id, clusterId: cluster.id, projectId: project.id, apiKey };
}
