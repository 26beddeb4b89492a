import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type BundleName, buildFunction, bundles, entryExists } from "../../scripts/build-functions.ts";

// Bundles go to a temporary directory: the test must not race a developer's dist/.
const outDir = mkdtempSync(path.join(tmpdir(), "capydb-bundles-"));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe("Lambda bundles (scripts/build-functions.ts)", () => {
  for (const name of Object.keys(bundles) as BundleName[]) {
    const { entry, maxBytes } = bundles[name];
    const title = `${entry} bundles to one minified ESM file within ${maxBytes / 1024} KiB, exporting handler`;

    it(title, { timeout: 60_000 }, async () => {
      expect(entryExists(name), `${entry} exists`).toBe(true);
      // act
      const result = await buildFunction(name, outDir);
      // assess
      expect(statSync(result.file).size).toBe(result.bytes);
      expect(result.file.endsWith(path.join(name, "index.mjs"))).toBe(true);
      expect(result.exports).toContain("handler");
      expect(result.bytes, `${name}: ${result.bytes} bytes; largest inputs ${JSON.stringify(result.largestInputs)}`).toBeLessThanOrEqual(maxBytes);
    });
  }

  it("leaves the S3 client and the console out of the API bundle (they are other functions' work)", { timeout: 60_000 }, async () => {
    const result = await buildFunction("api", outDir);
    const names = result.byPackage.map((p) => p.name);
    // Downloads are signed with the SDK's presigner alone (core/aws/presign.ts).
    expect(names).toContain("@aws-sdk/s3-request-presigner");
    expect(names).not.toContain("@aws-sdk/client-s3");
    // /console is functions/console.ts's.
    expect(names.filter((n) => n.startsWith("core/console"))).toEqual([]);
  });

  it("leaves the dump, restore and archive code out of the dispatcher's bundle (its cleanup of failed backups needs a connection, no pg_dump)", {
    timeout: 60_000,
  }, async () => {
    const result = await buildFunction("dispatch", outDir);
    // The reaper and the retention sweep fail backups for good (core/backups/cleanup.ts): they drop
    // scratch databases and abort uploads, and nothing else of the engine may come along.
    const engine = result.inputs.filter((p) => p.startsWith("core/pg/"));
    expect(engine).toContain("core/pg/scratch.ts");
    const dumpAndArchive = ["dump", "archive", "deflate", "verify", "stream-verify", "copy-database", "recovery"].map((m) => `core/pg/${m}.ts`);
    expect(engine.filter((p) => dumpAndArchive.includes(p))).toEqual([]);
    expect(result.inputs.filter((p) => p.startsWith("core/worker/"))).toEqual([]);
  });

  it("keeps the budgets the deployment promises", () => {
    expect(bundles.api.maxBytes).toBeLessThanOrEqual(1024 * 1024); // the API within 1 MiB: its cold start stays short
    expect(bundles.worker.maxBytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(bundles.deliver.maxBytes).toBeLessThanOrEqual(1024 * 1024);
    expect(bundles.console.maxBytes).toBeLessThanOrEqual(160 * 1024);
  });
});
