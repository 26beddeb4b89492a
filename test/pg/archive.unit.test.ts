import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ArchiveReader, storedArchive } from "../../core/pg/archive.ts";

/*
 * Pure: the archive reader on a real pg_dump archive kept as a fixture, no PostgreSQL started.
 * fixtures/three-tables.Z0.dump is `pg_dump -Fc -Z0` (pg_dump 15.18, archive 1.14) of a database
 * with public.items (3 rows, one value holding a newline and one a tab), public.empty (no rows)
 * and billing.invoices (2 rows). test/pg/archive.test.ts checks the same reader against a real
 * pg_restore.
 */
const fixture = readFileSync(new URL("./fixtures/three-tables.Z0.dump", import.meta.url));
const expected = { "public.items": 3, "public.empty": 0, "billing.invoices": 2 };

/** Feeds `archive` to a new reader in chunks of `size` bytes and returns its counts. */
async function countIn(archive: Buffer, size: number, compressLevel = 0) {
  const out: (Buffer | Promise<Buffer>)[] = [];
  const reader = new ArchiveReader((b) => out.push(b), compressLevel);
  for (let i = 0; i < archive.length; i += size) {
    reader.write(archive.subarray(i, i + size));
    await reader.drained();
  }
  const counts = await reader.finish();
  return { reader, counts, output: Buffer.concat(await Promise.all(out)) };
}

describe("the pg_dump archive reader (core/pg/archive.ts)", () => {
  it("counts every table's rows from the archive's data blocks, however the stream is cut", async () => {
    for (const size of [1, 7, 64, fixture.length]) {
      const { counts, reader } = await countIn(fixture, size);
      expect(reader.unsupported, `chunks of ${size}`).toBeUndefined();
      expect(counts, `chunks of ${size}`).toEqual(expected);
    }
  });

  it("passes an archive through unchanged when asked not to compress", async () => {
    const { output } = await countIn(fixture, 100);
    expect(output.equals(fixture)).toBe(true);
  });

  it("compresses on the way into an archive it can read back with the same counts", async () => {
    const { archive, reader } = storedArchive(
      (async function* () {
        yield fixture;
      })(),
      1,
    );
    const chunks: Buffer[] = [];
    for await (const c of archive) chunks.push(c as Buffer);
    expect(await reader.finish()).toEqual(expected);
    const stored = Buffer.concat(chunks);
    expect(stored.subarray(0, 5).toString("latin1")).toBe("PGDMP");
    expect(stored.equals(fixture)).toBe(false);
    const again = await countIn(stored, 33);
    expect(again.counts).toEqual(expected);
  });

  it("gives up with a reason on what it does not know: no PGDMP header, a newer archive version", async () => {
    const notAnArchive = await countIn(Buffer.from("PGDMQ" + "x".repeat(64)), 16);
    expect(notAnArchive.counts).toBeUndefined();
    expect(notAnArchive.reader.unsupported).toMatch(/not a pg_dump archive/);

    const newer = Buffer.from(fixture);
    newer[6] = 99; // the minor archive version after "PGDMP" and the major
    const future = await countIn(newer, 64);
    expect(future.counts).toBeUndefined();
    expect(future.reader.unsupported).toMatch(/archive version 1\.99 is not one this reader knows/);
  });

  it("fails an archive cut short while compressing as transient (pg_dump died mid-stream), not as a bad archive", async () => {
    const { reader, counts } = await countIn(fixture.subarray(0, fixture.length - 10), 64, 1);
    expect(counts).toBeUndefined();
    expect(reader.unsupported).toMatch(/ended inside a block/);
    expect(reader.failure?.classification).toBe("transient");
  });
});
