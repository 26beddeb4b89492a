import pg from "pg";
import { closeQuietly, connect, withAdmin, type ClusterConnection } from "../pg/pgconn.ts";

/**
 * The cutover of a promote: the preview's database takes the project's database name, and the
 * project's database is kept under a preview's name. Every step first looks at the cluster (which
 * databases exist under which names, who owns them), so a retry after a crash at any point
 * resumes where the last attempt stopped instead of repeating or skipping a step. The two renames
 * commit in one transaction: the project's name always names either all the old data or all the
 * new. Whatever happens, the database under the project's name accepts connections again before
 * this returns or throws.
 */
export interface SwapPlan {
  /** The project's database name: stays the name the application connects to. */
  project: string;
  /** The preview database being promoted, and its role (owner of everything restored into it). */
  incoming: string;
  incomingRole: string;
  /** Where the project's current database goes: a new preview's database, and that preview's role. */
  parked: string;
  parkedRole: string;
  /** The role that owns the project's database: the application's own credentials. */
  projectRole: string;
  /** Who may connect to the project's database, as read before the swap (null: PostgreSQL's default). */
  projectAcl: DatabaseGrant[] | null;
}

export interface DatabaseGrant {
  /** null: PUBLIC. */
  grantee: string | null;
  privilege: "CONNECT" | "TEMPORARY" | "CREATE";
}

/** Where a swap stands, from the cluster's catalog alone. */
export type SwapState = "before" | "half" | "swapped" | "unknown";

/** Test hooks: fault injection at the boundaries the crash tests need (never set in production). */
export interface SwapHooks {
  beforeRename?: () => Promise<void> | void;
}

const id = (name: string) => pg.escapeIdentifier(name);

async function databases(c: pg.Client, names: string[]): Promise<Map<string, { owner: string; allow: boolean }>> {
  const { rows } = await c.query<{ datname: string; owner: string; allow: boolean }>(
    "SELECT datname, pg_get_userbyid(datdba) AS owner, datallowconn AS allow FROM pg_database WHERE datname = ANY($1)",
    [names],
  );
  return new Map(rows.map((r) => [r.datname, { owner: r.owner, allow: r.allow }]));
}

/** The project's database as the swap must preserve it: its owner and who may connect. */
export async function inspectDatabase(conn: ClusterConnection, database: string): Promise<{ owner: string; acl: DatabaseGrant[] | null } | undefined> {
  return withAdmin(conn, async (c) => {
    const { rows } = await c.query<{ owner: string; acl: string | null }>(
      "SELECT pg_get_userbyid(datdba) AS owner, datacl::text AS acl FROM pg_database WHERE datname = $1",
      [database],
    );
    if (!rows[0]) return undefined;
    if (rows[0].acl === null) return { owner: rows[0].owner, acl: null };
    const { rows: grants } = await c.query<{ grantee: string | null; privilege: DatabaseGrant["privilege"] }>(
      `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type AS privilege
       FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1`,
      [database],
    );
    return { owner: rows[0].owner, acl: grants };
  });
}

/** Where the swap stands: before (nothing renamed), half (old name freed), swapped, or unknown. */
export async function swapState(conn: ClusterConnection, plan: Pick<SwapPlan, "project" | "incoming" | "parked">): Promise<SwapState> {
  return withAdmin(conn, async (c) => stateOf(await databases(c, [plan.project, plan.incoming, plan.parked]), plan));
}

function stateOf(dbs: Map<string, unknown>, plan: Pick<SwapPlan, "project" | "incoming" | "parked">): SwapState {
  const has = (n: string) => dbs.has(n);
  if (has(plan.project) && has(plan.incoming) && !has(plan.parked)) return "before";
  if (!has(plan.project) && has(plan.incoming) && has(plan.parked)) return "half";
  if (has(plan.project) && !has(plan.incoming) && has(plan.parked)) return "swapped";
  return "unknown";
}

/**
 * Hands every object of the incoming database to the project's role (so the application's
 * credentials own the data they will find) and drops the preview role's grants in it. Runs inside
 * the incoming database before the swap; idempotent.
 */
export async function adoptIncoming(conn: ClusterConnection, plan: SwapPlan): Promise<void> {
  // A crash mid-swap can leave the incoming database refusing connections, or already renamed.
  const present = await withAdmin(conn, async (c) => {
    const dbs = await databases(c, [plan.incoming]);
    await allowConnections(c, [plan.incoming]);
    return dbs.has(plan.incoming);
  });
  if (!present) return;
  const client = await connect(conn, plan.incoming);
  try {
    const { rows } = await client.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [plan.incomingRole]);
    if (!rows.length) return;
    // REASSIGN also hands over shared objects the role owns: only its own database (a preview role owns nothing else).
    await client.query(`REASSIGN OWNED BY ${id(plan.incomingRole)} TO ${id(plan.projectRole)}`);
    await client.query(`DROP OWNED BY ${id(plan.incomingRole)}`);
  } finally {
    await closeQuietly(client);
  }
}

/** Waits until nobody is connected to `names` (terminating sessions), for at most `ms`. */
async function emptyOut(c: pg.Client, names: string[], ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const { rows } = await c.query<{ n: number }>(
      "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid()",
      [names],
    );
    if (!rows[0]?.n) return;
    if (Date.now() > until) throw new Error(`sessions in ${names.join(", ")} did not end within ${ms / 1000}s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The swap itself, in one short step: new connections refused on both databases, their sessions
 * ended, both renames and the ownership and grants in one transaction, connections allowed again.
 * Resumes from any state a crash can leave; refuses (throws) on a state it did not make.
 */
export async function swapDatabases(conn: ClusterConnection, plan: SwapPlan, hooks: SwapHooks = {}): Promise<void> {
  await withAdmin(conn, async (c) => {
    try {
      const state = stateOf(await databases(c, [plan.project, plan.incoming, plan.parked]), plan);
      if (state === "unknown") {
        throw new Error(`cannot swap: expected databases ${plan.project} and ${plan.incoming} (and no ${plan.parked}) on the cluster`);
      }
      if (state !== "swapped") {
        const present = state === "before" ? [plan.project, plan.incoming] : [plan.parked, plan.incoming];
        for (const db of present) await c.query(`ALTER DATABASE ${id(db)} WITH ALLOW_CONNECTIONS false`);
        await emptyOut(c, present);
        await hooks.beforeRename?.();
        await c.query("BEGIN");
        if (state === "before") await c.query(`ALTER DATABASE ${id(plan.project)} RENAME TO ${id(plan.parked)}`);
        await c.query(`ALTER DATABASE ${id(plan.incoming)} RENAME TO ${id(plan.project)}`);
        await c.query(`ALTER DATABASE ${id(plan.project)} OWNER TO ${id(plan.projectRole)}`);
        await c.query(`ALTER DATABASE ${id(plan.parked)} OWNER TO ${id(plan.parkedRole)}`);
        await applyGrants(c, plan);
        await c.query("COMMIT");
      } else {
        await applyGrants(c, plan);
      }
    } catch (err) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      // Whatever happened, the project's name accepts connections again (old or new data).
      await allowConnections(c, [plan.project, plan.parked, plan.incoming]).catch(() => undefined);
    }
    await allowConnections(c, [plan.project, plan.parked, plan.incoming]);
  });
}

/**
 * After the swap, the promoted preview's role owns nothing and is granted nothing (see
 * `adoptIncoming`): it is dropped, so its credentials stop working. Idempotent.
 */
export async function retireIncomingRole(conn: ClusterConnection, plan: Pick<SwapPlan, "incomingRole" | "projectRole">): Promise<void> {
  if (plan.incomingRole === plan.projectRole) return;
  await withAdmin(conn, async (c) => {
    await c.query(`DROP ROLE IF EXISTS ${id(plan.incomingRole)}`);
  });
}

async function allowConnections(c: pg.Client, names: string[]): Promise<void> {
  for (const [name, db] of await databases(c, names)) {
    if (!db.allow) await c.query(`ALTER DATABASE ${id(name)} WITH ALLOW_CONNECTIONS true`);
  }
}

/**
 * The project's database keeps who could connect to it before; the parked one is a preview:
 * reachable by its own role and the service only.
 */
async function applyGrants(c: pg.Client, plan: SwapPlan): Promise<void> {
  const project = id(plan.project);
  await c.query(`REVOKE ALL ON DATABASE ${project} FROM PUBLIC`);
  const { rows: role } = await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [plan.incomingRole]);
  if (role.length) await c.query(`REVOKE ALL ON DATABASE ${project} FROM ${id(plan.incomingRole)}`);
  const grants = plan.projectAcl ?? [
    { grantee: null, privilege: "CONNECT" },
    { grantee: null, privilege: "TEMPORARY" },
  ];
  for (const g of grants) {
    if (g.grantee === plan.projectRole) continue; // the owner's own privileges came with the ownership
    const { rows } = g.grantee === null ? { rows: [1] } : await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [g.grantee]);
    if (rows.length) await c.query(`GRANT ${g.privilege} ON DATABASE ${project} TO ${g.grantee === null ? "PUBLIC" : id(g.grantee)}`);
  }
  await c.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${project} TO CURRENT_USER`);

  const parked = id(plan.parked);
  const { rows: others } = await c.query<{ grantee: string }>(
    `SELECT DISTINCT pg_get_userbyid(a.grantee) AS grantee FROM pg_database d, aclexplode(d.datacl) a
     WHERE d.datname = $1 AND a.grantee <> 0 AND a.grantee <> d.datdba`,
    [plan.parked],
  );
  await c.query(`REVOKE ALL ON DATABASE ${parked} FROM PUBLIC`);
  for (const o of others) await c.query(`REVOKE ALL ON DATABASE ${parked} FROM ${id(o.grantee)}`);
  await c.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${parked} TO CURRENT_USER`);
}

/**
 * After the swap: the parked database (the project's old data) is a preview, so its own role may
 * read and change what it holds (the objects stay owned by the project's role, which promoting it
 * back relies on). Idempotent.
 */
export async function openParkedToItsRole(conn: ClusterConnection, plan: SwapPlan): Promise<void> {
  const client = await connect(conn, plan.parked);
  try {
    const { rows } = await client.query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'",
    );
    const role = id(plan.parkedRole);
    for (const { nspname } of rows) {
      const s = id(nspname);
      await client.query(`GRANT USAGE ON SCHEMA ${s} TO ${role}`);
      await client.query(`GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA ${s} TO ${role}`);
      await client.query(`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${s} TO ${role}`);
    }
  } finally {
    await closeQuietly(client);
  }
}

/**
 * Lets connections into `names` again (those that exist): what a failed or abandoned cutover
 * ends with, whatever state a killed attempt left. Idempotent.
 */
export async function allowConnectionsTo(conn: ClusterConnection, names: string[]): Promise<void> {
  await withAdmin(conn, (c) => allowConnections(c, names));
}

/** Which of `names` exist on the cluster. */
export async function existingDatabases(conn: ClusterConnection, names: string[]): Promise<Set<string>> {
  return withAdmin(conn, async (c) => new Set((await databases(c, names)).keys()));
}
