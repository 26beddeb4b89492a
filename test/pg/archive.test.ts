import { createTestEnv, type TestEnv } from "../support/env.ts";
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArchiveReader, storedArchive } from "../../core/pg/archive.ts";
import { WorkerFailure } from "../../core/pg/classify.ts";
import { pickPgTools, type PgTools } from "../../core/pg/pgtools.ts";
import { backupOf, fastOptions, libpqEnv, postBackup, runQueueUntilSettled, runTool } from "../worker/support.ts";

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
  // block of another type between the tables' data); rows of 1.3-3.8 MB (one row over several of
  // the worker's 1 MiB compression segments); a table big enough for many chunks.
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
     CREATE TABLE wide (id int, t text);
     INSERT INTO wide SELECT g, repeat(md5(g::text), 40000 * g) FROM generate_series(1, 3) g;
     CREATE TABLE big (id int, payload text);
     INSERT INTO big SELECT g, md5(g::text) || E'\\t' || md5((g * 7)::text) FROM generate_series(1, 60000) g;`,
  );
});
afterAll(async () => env?.cleanup());

function pgDump(args: string[], database = db): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(tools.pgDump, ["--format=custom", ...args], { env: libpqEnv(env.infra.postgresUrl, database), stdio: ["ignore", "pipe", "pipe"] });
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
  const counter = new ArchiveReader();
  let at = 0;
  for (let i = 0; at < archive.length; i++) {
    const n = sizes[i % sizes.length]!;
    counter.write(archive.subarray(at, at + n));
    at += n;
    await counter.drained();
  }
  return { counts: await counter.finish(), unsupported: counter.unsupported };
}

/** Every ordinary table of `database` (partitions included), with its quoted name. */
async function userTables(database: string): Promise<{ key: string; quoted: string }[]> {
  const tables = await env.query<{ schema: string; name: string }>(
    database,
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'`,
  );
  const quote = (id: string) => `"${id.replace(/"/g, '""')}"`;
  return tables.map((t) => ({ key: `${t.schema}.${t.name}`, quoted: `${quote(t.schema)}.${quote(t.name)}` }));
}

async function truth(database = db): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of await userTables(database)) {
    const [row] = await env.query<{ n: string }>(database, `SELECT count(*) AS n FROM ONLY ${t.quoted}`);
    out[t.key] = Number(row!.n);
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

/** Runs a PostgreSQL tool against `database` with `input` on its stdin; its stdout, once it exited 0. */
async function pgTool(bin: string, args: string[], database: string, input: Buffer): Promise<string> {
  const r = await runTool(bin, args, libpqEnv(env.infra.postgresUrl, database), input);
  if (r.code !== 0) throw new Error(`${bin} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Every table's rows (md5 of them in order) and every large object's bytes: what a restore must reproduce. */
async function fingerprint(database: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of await userTables(database)) {
    const [row] = await env.query<{ n: string; h: string | null }>(
      database,
      `SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS h FROM ONLY ${t.quoted} t`,
    );
    out[t.key] = `${row!.n}:${row!.h}`;
  }
  for (const lo of await env.query<{ oid: number; h: string }>(database, "SELECT oid, md5(lo_get(oid)) AS h FROM pg_largeobject_metadata ORDER BY oid"))
    out[`lo ${lo.oid}`] = lo.h;
  return out;
}

/** `archive` through storedArchive, delivered in pieces of the given sizes (cycled). */
async function store(archive: Buffer, sizes: number[], level = 4) {
  async function* pieces() {
    let at = 0;
    for (let i = 0; at < archive.length; i++) {
      const n = sizes[i % sizes.length]!;
      yield archive.subarray(at, at + n);
      at += n;
    }
  }
  const { reader, archive: out } = storedArchive(pieces(), level);
  const parts: Buffer[] = [];
  let error: unknown;
  try {
    for await (const b of out) parts.push(b as Buffer);
  } catch (err) {
    error = err;
  }
  return { stored: Buffer.concat(parts), error, counts: error ? undefined : await reader.finish(), unsupported: reader.unsupported };
}

describe("the worker compresses pg_dump's uncompressed archive", () => {
  it.each([
    ["in 64 KiB pieces", [65536]],
    ["in odd small pieces that split every header, length and row", [1, 2, 3, 5, 7, 11, 4096, 13]],
  ])(
    "%s: a standard compressed archive that pg_restore restores to the same rows and large objects, about pg_dump's size, with the counts",
    async (_label, sizes) => {
      // prepare
      const plain = await pgDump(["--compress=0"]);
      const byPgDump = await pgDump(["--compress=4"]);

      // act
      const { stored, error, counts, unsupported } = await store(plain, sizes);

      // assess: the header says so, the data is compressed, and nothing else changed
      expect(error).toBeUndefined();
      expect(unsupported).toBeUndefined();
      expect(counts).toEqual(await truth());
      expect(stored.length).toBeLessThan(plain.length * 0.8);
      expect(stored.length).toBeLessThan(byPgDump.length * 1.1);
      const list = await pgTool(tools.pgRestore, ["--list"], db, stored);
      expect(list).toMatch(/Compression: 4/);
      expect(list.split("\n").filter((l) => !l.startsWith(";"))).toEqual(
        (await pgTool(tools.pgRestore, ["--list"], db, plain)).split("\n").filter((l) => !l.startsWith(";")),
      );
      const target = await env.createDatabase({ prefix: "arcr" });
      await pgTool(tools.pgRestore, ["--no-owner", "--no-acl", "--exit-on-error", "--dbname", target], target, stored);
      expect(await fingerprint(target)).toEqual(await fingerprint(db));
    },
  );

  it("an archive pg_dump compressed itself passes unchanged (and is counted)", async () => {
    const byPgDump = await pgDump(["--compress=6"]);
    const { stored, error, counts } = await store(byPgDump, [4096, 7]);
    expect(error).toBeUndefined();
    expect(stored.equals(byPgDump)).toBe(true);
    expect(counts).toEqual(await truth());
  });

  it("what it cannot read before compressing passes unchanged; a stream cut short after it began fails the dump", async () => {
    // Not an archive at all: the bytes are stored as they came, and the counts fall back.
    const text = Buffer.from("--\n-- PostgreSQL database dump\n--\n");
    const notArchive = await store(text, [5]);
    expect(notArchive.error).toBeUndefined();
    expect(notArchive.stored.equals(text)).toBe(true);
    expect(notArchive.unsupported).toMatch(/not a pg_dump archive/);

    // Cut inside the table data: never a half-compressed archive that looks whole.
    const plain = await pgDump(["--compress=0"]);
    const cut = await store(plain.subarray(0, Math.floor(plain.length * 0.6)), [65536]);
    expect(cut.error).toBeInstanceOf(WorkerFailure);
    expect((cut.error as WorkerFailure).classification).toBe("transient"); // pg_dump died mid-archive: worth a retry
    expect(String((cut.error as Error).message)).toMatch(/could not be compressed: the archive ended inside a block/);
  });

  it("an empty database's archive (no data at all) compresses and restores", async () => {
    const empty = await env.createDatabase({ prefix: "arce" });
    await env.query(empty, "CREATE TABLE t (id int); CREATE TABLE u (x text)");
    const { stored, error, counts } = await store(await pgDump(["--compress=0"], empty), [3]);
    expect(error).toBeUndefined();
    expect(counts).toEqual({ "public.t": 0, "public.u": 0 });
    const target = await env.createDatabase({ prefix: "arcr" });
    await pgTool(tools.pgRestore, ["--no-owner", "--no-acl", "--exit-on-error", "--dbname", target], target, stored);
    expect(await fingerprint(target)).toEqual(await fingerprint(empty));
  });
});

describe("a backup reads the customer's tables once", () => {
  it("pg_dump's scan is the only one: each table is scanned once during the backup, and the recorded counts are the dump's", async () => {
    // prepare
    const source = await env.createDatabase({ prefix: "once" });
    await env.query(
      source,
      `CREATE TABLE a (id int); INSERT INTO a SELECT generate_series(1, 5000); CREATE TABLE b (t text); INSERT INTO b SELECT E'x\\ny' FROM generate_series(1, 321);`,
    );
    const scans = async () =>
      Object.fromEntries(
        (await env.query<{ relname: string; seq_scan: string }>(source, "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname IN ('a', 'b')")).map(
          (r) => [r.relname, Number(r.seq_scan)],
        ),
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
