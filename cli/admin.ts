/**
 * capydb-admin: operator tooling that works on the store directly (not through the API), for the
 * people who run the service. Reads the same configuration as the service.
 */
import { Command, CommanderError, Option } from "commander";
import { createApproval } from "../core/approvals/approvals.ts";
import { approvalActions, approvalActionSchema } from "../core/contract/approvals.ts";
import { operatorActor } from "../core/audit/audit.ts";
import { createApiKey, listApiKeys, revokeApiKey } from "../core/auth/keys.ts";
import { allScopes, type Scope } from "../core/auth/scopes.ts";
import { ConfigError } from "../core/config.ts";
import { createDeps, type Deps } from "../core/deps.ts";
import { AppError } from "../core/errors.ts";
import {
  createCluster,
  createOrganization,
  createProject,
  getCluster,
  getOrganization,
  getProject,
  listProjects,
  newClusterConnection,
  toOrganization,
  toProject,
  updateClusterSettings,
  updateOrganizationSettings,
  updateProjectSettings,
} from "../core/orgs/orgs.ts";
import { isolateNewCluster, probeProjectFacts } from "../core/orgs/probe.ts";
import { enableArchive, getArchive, listBaseBackups, updateArchive } from "../core/wal/archive.ts";
import { requestBaseBackup } from "../core/wal/basebackups.ts";
import { allArchiveHealth, archiveHealth, type ArchiveHealth } from "../core/wal/health.ts";
import { ZodError } from "zod";
import { archiveStatusTable } from "./archive-status.ts";
import { operatorConfig } from "./config.ts";
import { dlqList, dlqRedrive } from "./dlq.ts";
import { exitWhenFlushed } from "./exit.ts";

let deps: Deps | undefined;
const getDeps = (): Deps => (deps ??= createDeps(operatorConfig(), {}));
const print = (value: unknown): void => {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").trim();
}

const program = new Command("capydb-admin")
  .description("Operator tooling for the CapyDB backups service (works on the store directly)")
  .showHelpAfterError()
  .exitOverride();

const org = program.command("org").description("organizations");
org
  .command("create")
  .requiredOption("--name <name>", "unique organization name")
  .option("--clerk-org <id>", "the Clerk organization id that maps to it")
  .action(async (o: { name: string; clerkOrg?: string }) => {
    print(toOrganization(await createOrganization(getDeps(), { name: o.name, clerk_organization_id: o.clerkOrg ?? null })));
  });
org.command("get <orgID>").action(async (id: string) => {
  const found = await getOrganization(getDeps(), id);
  if (!found) throw new AppError("not_found", `organization ${id} not found`);
  print({ ...toOrganization(found), projects: await listProjects(getDeps(), id) });
});
org
  .command("set <orgID>")
  .description("record what only the operators know (the API shows it to the organization's callers)")
  .option("--billing-plan <plan>")
  .option("--billing-status <status>")
  .option("--billing-provider <provider>")
  .option("--clerk-org-slug <slug>", "the Clerk organization's slug ('none' clears it)")
  .option("--suspended-at <time>", "RFC 3339 time the organization was suspended ('none' clears it)")
  .action(async (id: string, o: { billingPlan?: string; billingStatus?: string; billingProvider?: string; clerkOrgSlug?: string; suspendedAt?: string }) => {
    const updated = await updateOrganizationSettings(getDeps(), id, {
      billing_plan: o.billingPlan,
      billing_status: o.billingStatus,
      billing_provider: o.billingProvider,
      clerk_organization_slug: orNull(o.clerkOrgSlug),
      suspended_at: orNull(o.suspendedAt),
    });
    print(toOrganization(updated));
  });

/** An option's value, 'none' meaning null (clear it), absent meaning unchanged. */
function orNull(v: string | undefined): string | null | undefined {
  return v === undefined ? undefined : v === "none" ? null : v;
}
/** A whole number option ('none' clears it); anything else is refused by name. */
function intOrNull(name: string, v: string | undefined): number | null | undefined {
  if (v === undefined || v === "none") return orNull(v) as null | undefined;
  if (!/^\d+$/.test(v)) throw new AppError("bad_request", `${name}: must be a whole number (or 'none')`);
  return Number(v);
}
/** Drops the options that were not given, so only those change. */
const given = <T extends Record<string, unknown>>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

type ClusterOptions = { region?: string; publicHost?: string; poolerPort?: string };
const clusterSettings = (o: ClusterOptions) =>
  given({ region: orNull(o.region), public_host: orNull(o.publicHost), pooler_port: intOrNull("--pooler-port", o.poolerPort) });
const cluster = program.command("cluster").description("PostgreSQL clusters that host project databases");
cluster
  .command("add")
  .requiredOption("--name <name>", "unique cluster name")
  .option("--url <url>", "postgres://user:password@host:port/admin_db (prefer --url-stdin: keeps the password out of shell history)")
  .option("--url-stdin", "read the connection URL from standard input")
  .option("--insecure-tls", "allow plaintext or unverified TLS in the URL's sslmode (default: verify-full, refusing anything weaker)")
  .option("--pg-hba-isolated", "register even with databases open to PUBLIC: pg_hba.conf confines every role to its own database (docs/security.md)")
  .option("--region <region>", "where it runs (e.g. eu-west-1): the region its projects show")
  .option("--public-host <host>", "the host clients connect to, when not the one in --url")
  .option("--pooler-port <port>", "the port of its connection pooler, if it has one")
  .action(async (o: { name: string; url?: string; urlStdin?: boolean; insecureTls?: boolean; pgHbaIsolated?: boolean } & ClusterOptions) => {
    const url = o.urlStdin ? await readStdin() : (o.url ?? process.env.CAPYDB_CLUSTER_URL);
    if (!url) throw new AppError("bad_request", "give the connection URL with --url, --url-stdin or CAPYDB_CLUSTER_URL");
    const input = { name: o.name, url, insecure_tls: o.insecureTls ?? false, ...clusterSettings(o) };
    // Tenants apart: a preview's role (its password is the customer's) must reach no database but its own.
    const isolation = await isolateNewCluster(newClusterConnection(input));
    if (isolation?.open.length && !o.pgHbaIsolated) {
      const list = isolation.open.map((d) => `"${d}"`).join(", ");
      throw new AppError(
        "bad_request",
        `a preview role could connect to ${list} on this cluster (PUBLIC may connect to ${isolation.open.length === 1 ? "it" : "them"}): ` +
          `revoke that (REVOKE CONNECT, TEMPORARY ON DATABASE ... FROM PUBLIC, then GRANT CONNECT to the roles that use it), ` +
          "or confine every role to its own database with pg_hba.conf rules and pass --pg-hba-isolated (docs/security.md)",
      );
    }
    // The stored password is sealed with the service's key; it is never printed, logged or served.
    print(await createCluster(getDeps(), input));
    if (!isolation)
      process.stderr.write("Could not reach the cluster to check that tenants are kept apart on it: see docs/security.md before creating previews there.\n");
    else if (isolation.closed.length) process.stderr.write(`Closed to PUBLIC, so that preview roles cannot connect: ${isolation.closed.join(", ")}.\n`);
  });
cluster
  .command("set <clusterID>")
  .description("change what the cluster's projects and previews show ('none' clears a value)")
  .option("--region <region>")
  .option("--public-host <host>")
  .option("--pooler-port <port>")
  .action(async (id: string, o: ClusterOptions) => print(await updateClusterSettings(getDeps(), id, clusterSettings(o))));

const project = program.command("project").description("projects: one database on one cluster");
project
  .command("create")
  .requiredOption("--org <orgID>")
  .requiredOption("--cluster <clusterID>")
  .requiredOption("--name <name>")
  .requiredOption("--database <name>", "the project's database on the cluster")
  .addOption(new Option("--environment <env>", "production or non_production").choices(["production", "non_production"]).default("production"))
  .option("--postgres-version <major>", "the server's major version (default: asked of the cluster)")
  .action(
    async (o: { org: string; cluster: string; name: string; database: string; environment: "production" | "non_production"; postgresVersion?: string }) => {
      const facts = await probeProjectFacts(getDeps(), o.cluster, o.database).catch(() => ({}) as Awaited<ReturnType<typeof probeProjectFacts>>);
      const version = o.postgresVersion ?? facts.postgres_version;
      if (!version) process.stderr.write("Could not reach the cluster to read its PostgreSQL version; the project's postgres_version stays null.\n");
      const created = await createProject(getDeps(), {
        organization_id: o.org,
        cluster_id: o.cluster,
        name: o.name,
        database_name: o.database,
        environment: o.environment,
        postgres_version: version ?? null,
        max_connections: facts.max_connections ?? null,
        role_name: facts.role_name ?? null,
      });
      print(toProject(created, { cluster: await getCluster(getDeps(), o.cluster) }));
    },
  );
project
  .command("set <projectID>")
  .description("record what only the operators know (the API shows it; 'none' clears a value back to the cluster's or the default)")
  .option("--region <region>")
  .option("--plan <plan>")
  .addOption(new Option("--always-on <bool>").choices(["true", "false"]))
  .option("--runtime-status <status>")
  .option("--storage-limit-bytes <n>", "0: no limit")
  .option("--max-connections <n>")
  .option("--direct-port <port>")
  .option("--pooled-port <port>")
  .option("--role-name <role>", "the role that owns the project's database")
  .option("--public-host <host>")
  .addOption(new Option("--ssl-mode <mode>").choices(["disable", "allow", "prefer", "require", "verify-ca", "verify-full", "none"]))
  .option("--statement-timeout <value>", "as PostgreSQL writes it, e.g. 30s")
  .option("--idle-transaction-timeout <value>", "as PostgreSQL writes it, e.g. 5min")
  .option("--last-error <text>")
  .action(async (id: string, o: Record<string, string | undefined>) => {
    const updated = await updateProjectSettings(
      getDeps(),
      id,
      given({
        region: orNull(o.region),
        plan: o.plan,
        always_on: o.alwaysOn === undefined ? undefined : o.alwaysOn === "true",
        runtime_status: o.runtimeStatus,
        storage_limit_bytes: intOrNull("--storage-limit-bytes", o.storageLimitBytes) ?? undefined,
        max_connections: intOrNull("--max-connections", o.maxConnections),
        direct_port: intOrNull("--direct-port", o.directPort),
        pooled_port: intOrNull("--pooled-port", o.pooledPort),
        role_name: orNull(o.roleName),
        public_host: orNull(o.publicHost),
        ssl_mode: orNull(o.sslMode) as "require" | null | undefined,
        statement_timeout: orNull(o.statementTimeout),
        idle_transaction_timeout: orNull(o.idleTransactionTimeout),
        last_error: orNull(o.lastError),
      }),
    );
    print(toProject(updated, { cluster: await getCluster(getDeps(), updated.cluster_id) }));
  });

const key = program.command("key").description("API keys");
key
  .command("create")
  .requiredOption("--org <orgID>")
  .option("--project <projectID>", "scope the key to one project")
  .addOption(new Option("--scopes <scopes>", `comma-separated: ${allScopes.join(", ")}`).makeOptionMandatory())
  .option("--name <name>", "a name to recognise the key by", "admin-created")
  .option("--expires-at <time>", "RFC 3339 expiry")
  .action(async (o: { org: string; project?: string; scopes: string; name: string; expiresAt?: string }) => {
    const { key: plaintext, record } = await createApiKey(
      getDeps(),
      {
        organization_id: o.org,
        project_id: o.project ?? null,
        scopes: o.scopes
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean) as Scope[],
        name: o.name,
        expires_at: o.expiresAt ?? null,
      },
      operatorActor(),
    );
    // The API's shape (POST /v1/organizations/{orgID}/api-keys): one shape wherever a key is made.
    print({ key: plaintext, plaintext_api_key: plaintext, api_key: record });
    process.stderr.write("This is the only time the key is shown: store it now.\n");
  });
key
  .command("list")
  .requiredOption("--org <orgID>")
  .action(async (o: { org: string }) => print(await listApiKeys(getDeps(), o.org)));
key
  .command("revoke <keyID>")
  .requiredOption("--org <orgID>")
  .action(async (keyId: string, o: { org: string }) => {
    print(await revokeApiKey(getDeps(), o.org, keyId, operatorActor()));
    process.stderr.write("Revoked. API instances that cached the key stop accepting it within 60 seconds.\n");
  });

program
  .command("approval")
  .description("approvals of destructive operations (an admin's consent; recorded in the audit trail)")
  .command("create")
  .description("mint a single-use approval token (about 10 minutes) for one action on one project")
  .requiredOption("--project <projectID>")
  .addOption(new Option("--action <action>", "the operation approved").choices([...approvalActions]).makeOptionMandatory())
  .action(async (o: { project: string; action: string }) => {
    const project = await getProject(getDeps(), o.project);
    if (!project) throw new AppError("not_found", `project ${o.project} not found`);
    const approval = await createApproval(getDeps(), { project, action: approvalActionSchema.parse(o.action), actor: operatorActor() });
    print({ approval });
    process.stderr.write(`Single use, for ${approval.action} on ${project.id}, until ${approval.expires_at}. Recorded in the project's audit events.\n`);
  });

const archive = program.command("archive").description("the continuous WAL archive of each cluster (point-in-time recovery, docs/pitr.md)");
archive
  .command("status")
  .description(
    "per cluster: archiving on/off, latest archived segment, lag, WAL the slot keeps, newest verified base backup, open gaps, last base backup failure",
  )
  .option("--cluster <clusterID>", "one cluster (default: every archived cluster)")
  .addOption(new Option("-o, --output <format>", "json (default) or table").choices(["json", "table"]).default("json"))
  .action(async (o: { cluster?: string; output: "json" | "table" }) => {
    let health: ArchiveHealth[];
    if (o.cluster) {
      const one = await archiveHealth(getDeps(), o.cluster);
      if (!one)
        throw new AppError("not_found", `cluster ${o.cluster} has no WAL archive (turn it on with \`capydb-admin archive enable --cluster ${o.cluster}\`)`);
      health = [one];
    } else health = await allArchiveHealth(getDeps());
    if (o.output === "table") process.stdout.write(archiveStatusTable(health));
    else print({ archives: health });
  });
archive
  .command("enable")
  .description("archive the cluster's WAL continuously (the archiver starts streaming within seconds and takes a base backup at once)")
  .requiredOption("--cluster <clusterID>")
  .option("--window-days <n>", "pitr_window_days: how far back restores reach (default 7)")
  .action(async (o: { cluster: string; windowDays?: string }) => {
    if (!(await getCluster(getDeps(), o.cluster))) throw new AppError("not_found", `cluster ${o.cluster} does not exist`);
    const windowDays = intOrNull("--window-days", o.windowDays) ?? undefined;
    if (windowDays !== undefined && (windowDays < 1 || windowDays > 3650)) throw new AppError("bad_request", "--window-days: must be 1 to 3650");
    print(await enableArchive(getDeps(), o.cluster, { windowDays }));
  });
archive
  .command("disable")
  .description("stop archiving the cluster (the receiver stops; what is archived stays, under retention)")
  .requiredOption("--cluster <clusterID>")
  .action(async (o: { cluster: string }) => {
    if (!(await getArchive(getDeps(), o.cluster))) throw new AppError("not_found", `cluster ${o.cluster} has no WAL archive`);
    print(await updateArchive(getDeps(), o.cluster, { enabled: false }));
    process.stderr.write("The replication slot stays on the cluster and keeps WAL until dropped: SELECT pg_drop_replication_slot('<slot_name>').\n");
  });
archive
  .command("base-backup")
  .description("take a base backup of the cluster now: queued for the archiver, as the daily one is (--wait: until it is verified or failed)")
  .requiredOption("--cluster <clusterID>")
  .option("--wait", "wait for the base backup and print it (exit 1 if it fails)")
  .option("--wait-timeout <seconds>", "give up waiting after this long", "3600")
  .action(async (o: { cluster: string; wait?: boolean; waitTimeout: string }) => {
    const deps = getDeps();
    const found = await getArchive(deps, o.cluster);
    if (!found)
      throw new AppError("not_found", `cluster ${o.cluster} has no WAL archive (turn it on with \`capydb-admin archive enable --cluster ${o.cluster}\`)`);
    if (!found.enabled) throw new AppError("bad_request", `the WAL archive of cluster ${o.cluster} is disabled: no archiver takes its base backups`);
    const before = new Set((await listBaseBackups(deps, o.cluster)).map((b) => b.id));
    const queued = await requestBaseBackup(deps, o.cluster);
    if (!o.wait) {
      print({ cluster_id: o.cluster, base_backup_due_at: queued.base_backup_due_at, base_backup_reason: queued.base_backup_reason });
      process.stderr.write("Queued: the archiver takes it within seconds while it streams this cluster (`capydb-admin archive status` shows it).\n");
      return;
    }
    const timeout = intOrNull("--wait-timeout", o.waitTimeout) ?? 3600;
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
      const mine = (await listBaseBackups(deps, o.cluster)).filter((b) => !before.has(b.id) && b.trigger === "operator");
      const done = mine.find((b) => b.state === "completed" || b.state === "failed");
      if (done) {
        print({ base_backup: done });
        if (done.state === "failed") throw new Error(`base backup ${done.id} failed: ${done.error ?? "no reason given"}`);
        return;
      }
      if (Date.now() > deadline)
        throw new Error(`no base backup finished within ${timeout}s (still queued or running: \`capydb-admin archive status --cluster ${o.cluster}\`)`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  });

const dlq = program.command("dlq").description("the jobs dead-letter queue");
dlq
  .command("list")
  .option("--max <n>", "how many messages to show", "50")
  .action(async (o: { max: string }) => print(await dlqList(getDeps(), Number(o.max))));
dlq
  .command("redrive")
  .description("move every message of the dead-letter queue back to the jobs queue")
  .action(async () => print(await dlqRedrive(getDeps())));

try {
  await program.parseAsync(process.argv);
  await exitWhenFlushed(0);
} catch (err) {
  if (err instanceof CommanderError) await exitWhenFlushed(err.exitCode === 0 ? 0 : 2);
  const message =
    err instanceof ZodError
      ? err.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`).join("; ")
      : err instanceof AppError || err instanceof ConfigError
        ? err.message
        : err instanceof Error
          ? err.message
          : String(err);
  process.stderr.write(`capydb-admin: ${message}\n`);
  await exitWhenFlushed(err instanceof ZodError || (err instanceof AppError && err.status < 500) ? 2 : 1);
}
