/**
 * capydb-admin: operator tooling that works on the store directly (not through the API), for the
 * people who run the service. Reads the same configuration as the service.
 */
import { Command, CommanderError, Option } from "commander";
import { approvalActions, approvalActionSchema, createApproval } from "../core/approvals/approvals.ts";
import { operatorActor } from "../core/audit/audit.ts";
import { createApiKey, listApiKeys, revokeApiKey } from "../core/auth/keys.ts";
import { allScopes, type Scope } from "../core/auth/scopes.ts";
import { ConfigError } from "../core/config.ts";
import { createDeps, type Deps } from "../core/deps.ts";
import { AppError } from "../core/errors.ts";
import { createCluster, newClusterConnection, createOrganization, createProject, getOrganization, getProject, listProjects, toProject } from "../core/orgs/orgs.ts";
import { isolateNewCluster, probePostgresVersion } from "../core/orgs/probe.ts";
import { ZodError } from "zod";
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
    print(await createOrganization(getDeps(), { name: o.name, clerk_organization_id: o.clerkOrg ?? null }));
  });
org
  .command("get <orgID>")
  .action(async (id: string) => {
    const found = await getOrganization(getDeps(), id);
    if (!found) throw new AppError("not_found", `organization ${id} not found`);
    print({ ...found, projects: await listProjects(getDeps(), id) });
  });

program
  .command("cluster")
  .description("PostgreSQL clusters that host project databases")
  .command("add")
  .requiredOption("--name <name>", "unique cluster name")
  .option("--url <url>", "postgres://user:password@host:port/admin_db (prefer --url-stdin: keeps the password out of shell history)")
  .option("--url-stdin", "read the connection URL from standard input")
  .option("--insecure-tls", "allow plaintext or unverified TLS in the URL's sslmode (default: verify-full, refusing anything weaker)")
  .option("--pg-hba-isolated", "register even with databases open to PUBLIC: pg_hba.conf confines every role to its own database (docs/security.md)")
  .action(async (o: { name: string; url?: string; urlStdin?: boolean; insecureTls?: boolean; pgHbaIsolated?: boolean }) => {
    const url = o.urlStdin ? await readStdin() : (o.url ?? process.env.CAPYDB_CLUSTER_URL);
    if (!url) throw new AppError("bad_request", "give the connection URL with --url, --url-stdin or CAPYDB_CLUSTER_URL");
    const input = { name: o.name, url, insecure_tls: o.insecureTls ?? false };
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
    if (!isolation) process.stderr.write("Could not reach the cluster to check that tenants are kept apart on it: see docs/security.md before creating previews there.\n");
    else if (isolation.closed.length) process.stderr.write(`Closed to PUBLIC, so that preview roles cannot connect: ${isolation.closed.join(", ")}.\n`);
  });

program
  .command("project")
  .description("projects: one database on one cluster")
  .command("create")
  .requiredOption("--org <orgID>")
  .requiredOption("--cluster <clusterID>")
  .requiredOption("--name <name>")
  .requiredOption("--database <name>", "the project's database on the cluster")
  .addOption(new Option("--environment <env>", "production or non_production").choices(["production", "non_production"]).default("production"))
  .option("--postgres-version <major>", "the server's major version (default: asked of the cluster)")
  .action(async (o: { org: string; cluster: string; name: string; database: string; environment: "production" | "non_production"; postgresVersion?: string }) => {
    const version = o.postgresVersion ?? (await probePostgresVersion(getDeps(), o.cluster).catch(() => undefined));
    if (!version) process.stderr.write("Could not reach the cluster to read its PostgreSQL version; the project's postgres_version stays null.\n");
    print(
      toProject(
        await createProject(getDeps(), {
          organization_id: o.org,
          cluster_id: o.cluster,
          name: o.name,
          database_name: o.database,
          environment: o.environment,
          postgres_version: version ?? null,
        }),
      ),
    );
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
    const { key: plaintext, record } = await createApiKey(getDeps(), {
      organization_id: o.org,
      project_id: o.project ?? null,
      scopes: o.scopes.split(",").map((s) => s.trim()).filter(Boolean) as Scope[],
      name: o.name,
      expires_at: o.expiresAt ?? null,
    }, operatorActor());
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
