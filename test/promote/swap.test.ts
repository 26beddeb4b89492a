import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClusterConnection } from "../../core/pg/pgconn.ts";
import { adoptIncoming, inspectDatabase, openParkedToItsRole, retireIncomingRole, swapDatabases, swapState, type SwapPlan } from "../../core/promote/swap.ts";
import { createTestEnv, uniq, type TestEnv } from "../support/env.ts";

/**
 * The promote's cutover on the real test PostgreSQL: an application role that owns the project's
 * database, a preview role that owns the incoming one, sessions connected during the swap.
 */
let env: TestEnv;
let admin: ClusterConnection;
const created: { dbs: string[]; roles: string[] } = { dbs: [], roles: [] };

beforeAll(async () => {
  env = await createTestEnv();
  const u = new URL(env.infra.postgresUrl);
  admin = {
    host: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    adminDatabase: "postgres",
    sslmode: null,
    insecureTls: true,
  };
});
afterAll(async () => {
  for (const db of created.dbs) await env.query("postgres", `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(db)} WITH (FORCE)`).catch(() => undefined);
  for (const r of created.roles) await env.query("postgres", `DROP ROLE IF EXISTS ${pg.escapeIdentifier(r)}`).catch(() => undefined);
  await env?.cleanup();
});

const name = (p: string) => uniq(p).replace(/-/g, "_");
const PASSWORD = "app-password-1";

async function role(prefix: string): Promise<string> {
  const r = name(prefix);
  created.roles.push(r);
  await env.query("postgres", `CREATE ROLE ${pg.escapeIdentifier(r)} LOGIN PASSWORD '${PASSWORD}'`);
  return r;
}

function as(user: string, database: string): pg.Client {
  const c = new pg.Client({ host: admin.host, port: admin.port, user, password: PASSWORD, database });
  c.on("error", () => undefined);
  return c;
}

/** A database owned by `owner`, with tables, a sequence, an index and a foreign key written by it. */
async function database(prefix: string, owner: string, flavour: string): Promise<string> {
  const db = name(prefix);
  created.dbs.push(db);
  await env.query("postgres", `CREATE DATABASE ${pg.escapeIdentifier(db)} OWNER ${pg.escapeIdentifier(owner)}`);
  const c = as(owner, db);
  await c.connect();
  await c.query(`CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL)`);
  await c.query(`CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers(id), total numeric, note text)`);
  await c.query(`CREATE INDEX ON orders (customer_id)`);
  await c.query(`INSERT INTO customers (name) SELECT '${flavour}-' || g FROM generate_series(1, 50) g`);
  await c.query(`INSERT INTO orders (customer_id, total, note) SELECT 1 + g % 50, g * 1.5, '${flavour}' FROM generate_series(1, 500) g`);
  await c.end();
  return db;
}

/** Each table's rows, hashed in key order. */
async function rowHashes(client: pg.Client): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of ["customers", "orders"]) {
    const { rows } = await client.query<{ h: string }>(`SELECT md5(string_agg(x::text, '|' ORDER BY x.id)) AS h FROM ${t} x`);
    out[t] = rows[0]!.h;
  }
  return out;
}

async function hashesAs(user: string, db: string) {
  const c = as(user, db);
  await c.connect();
  try {
    return await rowHashes(c);
  } finally {
    await c.end();
  }
}

async function scenario() {
  const app = await role("app");
  const preview = await role("pvw");
  const parkedRole = await role("parked");
  const project = await database("prj", app, "old");
  const incoming = await database("inc", preview, "new");
  const parked = name("parked");
  created.dbs.push(parked);
  const info = (await inspectDatabase(admin, project))!;
  const plan: SwapPlan = { project, incoming, incomingRole: preview, parked, parkedRole, projectRole: info.owner, projectAcl: info.acl };
  return { app, preview, parkedRole, plan, oldHashes: await hashesAs(app, project), newHashes: await hashesAs(preview, incoming) };
}

async function promote(plan: SwapPlan, hooks = {}) {
  await adoptIncoming(admin, plan);
  await swapDatabases(admin, plan, hooks);
  await openParkedToItsRole(admin, plan);
  await retireIncomingRole(admin, plan);
}

describe("the promote's swap", () => {
  it("ends the sessions of a connected client, which reconnects with the same credentials to the new data, owning it; the old data is kept under the parked name for its own role only", async () => {
    const s = await scenario();
    expect(s.oldHashes).not.toEqual(s.newHashes);
    expect(s.plan.projectRole).toBe(s.app);
    const client = as(s.app, s.plan.project);
    await client.connect();
    expect(await rowHashes(client)).toEqual(s.oldHashes);

    await promote(s.plan);

    const ended = await client.query("SELECT 1").then(
      () => "still connected",
      (e: { code?: string; message: string }) => e.code ?? e.message,
    );
    expect(ended).not.toBe("still connected");
    await client.end().catch(() => undefined);

    const again = as(s.app, s.plan.project);
    await again.connect();
    expect(await rowHashes(again)).toEqual(s.newHashes);
    // The application's role owns what it found: it writes, and its sequences work.
    await again.query("INSERT INTO customers (name) VALUES ('after promote')");
    const { rows } = await again.query<{ owner: string }>("SELECT tableowner AS owner FROM pg_tables WHERE tablename = 'orders'");
    expect(rows[0]!.owner).toBe(s.app);
    await again.end();

    expect(await swapState(admin, s.plan)).toBe("swapped");
    expect(await hashesAs(s.parkedRole, s.plan.parked)).toEqual(s.oldHashes);
    const refused = await as(s.app, s.plan.parked)
      .connect()
      .then(
        () => "connected",
        (e: { code?: string }) => e.code,
      );
    expect(refused).toBe("42501");
    // The promoted preview's role is gone: its credentials reach nothing any more.
    const preview = await as(s.preview, s.plan.project)
      .connect()
      .then(
        () => "connected",
        (e: { code?: string }) => e.code,
      );
    expect(preview).toBe("28P01");
  });

  it("leaves the project's database untouched and accepting connections when it fails before the rename; a retry then completes", async () => {
    const s = await scenario();
    await adoptIncoming(admin, s.plan);
    await expect(
      swapDatabases(admin, s.plan, {
        beforeRename: () => {
          throw new Error("worker lost");
        },
      }),
    ).rejects.toThrow("worker lost");
    expect(await swapState(admin, s.plan)).toBe("before");
    expect(await hashesAs(s.app, s.plan.project)).toEqual(s.oldHashes);

    await promote(s.plan);
    expect(await hashesAs(s.app, s.plan.project)).toEqual(s.newHashes);
  });

  it("resumes after a crash that left connections refused, or the old name already freed", async () => {
    const s = await scenario();
    await adoptIncoming(admin, s.plan);
    // A crash right after refusing connections: nobody can connect to the project's database...
    await env.query("postgres", `ALTER DATABASE ${pg.escapeIdentifier(s.plan.project)} WITH ALLOW_CONNECTIONS false`);
    await env.query("postgres", `ALTER DATABASE ${pg.escapeIdentifier(s.plan.incoming)} WITH ALLOW_CONNECTIONS false`);
    // ...and, worse, after the first rename (a version that renamed in two steps).
    await env.query("postgres", `ALTER DATABASE ${pg.escapeIdentifier(s.plan.project)} RENAME TO ${pg.escapeIdentifier(s.plan.parked)}`);
    expect(await swapState(admin, s.plan)).toBe("half");

    await promote(s.plan);
    expect(await swapState(admin, s.plan)).toBe("swapped");
    expect(await hashesAs(s.app, s.plan.project)).toEqual(s.newHashes);
    expect(await hashesAs(s.parkedRole, s.plan.parked)).toEqual(s.oldHashes);
    // Running it once more changes nothing.
    await promote(s.plan);
    expect(await hashesAs(s.app, s.plan.project)).toEqual(s.newHashes);
  });

  it("undo: promoting the parked database back gives exactly the original rows", async () => {
    const s = await scenario();
    await promote(s.plan);
    expect(await hashesAs(s.app, s.plan.project)).toEqual(s.newHashes);

    const back: SwapPlan = {
      ...s.plan,
      incoming: s.plan.parked,
      incomingRole: s.parkedRole,
      parked: name("parked2"),
      parkedRole: await role("parked2"),
    };
    created.dbs.push(back.parked);
    await promote(back);
    expect(await hashesAs(s.app, s.plan.project)).toEqual(s.oldHashes);
    expect(await hashesAs(back.parkedRole, back.parked)).toEqual(s.newHashes);
  });
});
