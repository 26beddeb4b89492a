// First: the API modules need @hono/zod-openapi loaded before any domain schema is built.
import { createTestEnv, type TestEnv } from "../support/env.ts";
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArchiveRowCounter } from "../../core/worker/archive.ts";
import { pickPgTools, type PgTools } from "../../core/worker/pgtools.ts";
import { backupOf, fastOptions, libpqEnv, postBackup, runQueueUntilSettled } from "./support.ts";

let env: TestEnv;
let tools: PgTools;
let db: string;

beforeAll(async () => {
  env = await createTestEnv();
  tools = await pickPgTools({ major: 15, text: "15" }, env.deps.pgBinDirs);
  db = await env.createDatabase({ prefix: "arc" });
  // COPY text's corner cases: values that are empty, NULL, hold newlines, tabs, backslashes, a
  // lone `\.`; a one-column table whose rows are empty lines (and whose last row is one); odd
  // schema and table names; an empty table; partitions; an unlogged table; large objects (a
  // block of another type between the tables' data); a table big enough for many chunks.
  await env.query(
    db,
    `CREATE TABLE lines (t text);
     INSERT INTO lines VALUES (''), (NULL), (E'a\\nb'), (E'\\\\.'), ('\\.'), (E'x\\\\'), (E'tab\\there'), ('.'), ('');
     CREATE TABLE only_empty (t text);
     INSERT INTO only_empty VALUES ('');
     CREATE TABLE only_marker (t text);
     INSERT INTO only_marker VALUES ('\\.');
     CREATE TABLE nothing (id int);
     CREATE SCHEMA "we""ird.sch";
     CREATE TABLE "we""ird.sch"."ta.ble ""x""" (id int, note text);
     INSERT INTO "we""ird.sch"."ta.ble ""x""" SELECT g, repeat(E'\\n', g % 3) FROM generate_series(1, 1234) g;
     CREATE TABLE events (at date NOT NULL, what text) PARTITION BY RANGE (at);
     CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
     CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
     INSERT INTO events SELECT date '2025-06-01' + (g % 400), 'e' || g FROM generate_series(1, 3000) g;
     CREATE UNLOGGED TABLE scratch (id int);
     INSERT INTO scratch SELECT generate_series(1, 77);
     SELECT lo_from_bytea(0, decode(repeat('ab', 50000), 'hex'));
     SELECT lo_from_bytea(0, E'\\\\x0a0a0a'::bytea);
     CREATE TABLE big (id int, payload text);
     INSERT INTO big SELECT g, md5(g::text) || E'\\t' || md5((g * 7)::text) FROM generate_series(1, 60000) g;`,
  );
});
afterAll(async () => env?.cleanup());

function pgDump(args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(tools.pgDump, ["--format=custom", ...args], { env: libpqEnv(env.infra.postgresUrl, db), stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`pg_dump exited ${code}: ${err}`))));
  });
}

/** Feeds `archive` in pieces of the given sizes (cycled), as a pipe would deliver it. */
async function countIn(archive: Buffer, sizes: number[]) {
  const counter = new ArchiveRowCounter();
  let at = 0;
  for (let i = 0; at < archive.length; i++) {
    const n = sizes[i % sizes.length]!;
    counter.write(archive.subarray(at, at + n));
    at += n;
    await counter.drained();
  }
  return { counts: await counter.finish(), unsupported: counter.unsupported };
}

async function truth(): Promise<Record<string, number>> {
  const tables = await env.query<{ schema: string; name: string }>(
    db,
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'`,
  );
  const out: Record<string, number> = {};
  for (const t of tables) {
    const [row] = await env.query<{ n: string }>(db, `SELECT count(*) AS n FROM ONLY "${t.schema.replace(/"/g, '""')}"."${t.name.replace(/"/g, '""')}"`);
    out[`${t.schema}.${t.name}`] = Number(row!.n);
  }
  return out;
}

describe("row counts read from a custom-format archive", () => {
  it.each([
    ["compressed (--compress=4), delivered in 64 KiB pieces", ["--compress=4"], [65536]],
    ["compressed, delivered in odd small pieces that split every header and length", ["--compress=6"], [1, 2, 3, 5, 7, 11, 4096, 13]],
    ["uncompressed (--compress=0)", ["--compress=0"], [1000, 1, 65536]],
  ])("%s: every table's count equals count(*) on the source", async (_label, args, sizes) => {
    // prepare
    const archive = await pgDump(args);

    // act
    const { counts, unsupported } = await countIn(archive, sizes);

    // assess
    expect(unsupported).toBeUndefined();
    const expected = await truth();
    expect(expected["public.lines"]).toBe(9);
    expect(expected["public.big"]).toBe(60000);
    expect(counts).toEqual(expected);
  });

  it("gives up with a reason on a truncated archive and on something that is not one", async () => {
    const archive = await pgDump(["--compress=4"]);
    const truncated = await countIn(archive.subarray(0, Math.floor(archive.length * 0.7)), [65536]);
    expect(truncated.counts).toBeUndefined();
    expect(truncated.unsupported).toMatch(/ended inside a block|no data block/);
    const plain = await countIn(Buffer.from("--\n-- PostgreSQL database dump\n--\n"), [65536]);
    expect(plain.counts).toBeUndefined();
    expect(plain.unsupported).toMatch(/not a pg_dump archive/);
  });
});

describe("a backup reads the customer's tables once", () => {
  it("pg_dump's scan is the only one: each table is scanned once during the backup, and the recorded counts are the dump's", async () => {
    // prepare
    const source = await env.createDatabase({ prefix: "once" });
    await env.query(source, `CREATE TABLE a (id int); INSERT INTO a SELECT generate_series(1, 5000); CREATE TABLE b (t text); INSERT INTO b SELECT E'x\\ny' FROM generate_series(1, 321);`);
    const scans = async () =>
      Object.fromEntries(
        (await env.query<{ relname: string; seq_scan: string }>(source, "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname IN ('a', 'b')")).map((r) => [r.relname, Number(r.seq_scan)]),
      );
    await new Promise((r) => setTimeout(r, 1200)); // the inserts' statistics reach pg_stat
    const before = await scans();
    const tenant = await env.seedTenant({ database: source });

    // act
    const job = await postBackup(env, tenant);
    const [settled] = await runQueueUntilSettled(env.deps, [job.id], fastOptions);

    // assess: verified with the dump's counts; the backends that read the tables have exited, so
    // their statistics are in (a count(*) beside pg_dump would make each delta 2)
    expect(settled?.state, JSON.stringify(settled)).toBe("completed");
    const backup = await backupOf(env.deps, settled!);
    expect(backup).toMatchObject({ verification_state: "verified", row_counts: { "public.a": 5000, "public.b": 321 } });
    let after = await scans();
    for (let i = 0; i < 20 && (after.a! - before.a! < 1 || after.b! - before.b! < 1); i++) {
      await new Promise((r) => setTimeout(r, 250));
      after = await scans();
    }
    await new Promise((r) => setTimeout(r, 1500));
    after = await scans();
    expect({ a: after.a! - before.a!, b: after.b! - before.b! }).toEqual({ a: 1, b: 1 });
  });
});
