import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCli } from "../../scripts/build-cli.ts";

/**
 * `npx capydb` loads its bundle and nothing else: the bundle must be the CLI, the wire contract
 * (core/contract/) and the ground floor it stands on, never the server. Built here exactly as
 * `prepare` builds it (scripts/build-cli.ts), into a temp dir; esbuild's metafile lists the inputs.
 */
let dir: string;
let inputs: string[];
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "capydb-cli-bundle-"));
  ({ inputs } = await buildCli(path.join(dir, "cli", "capydb.mjs")));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What would mean the CLI loads the server: the store, the AWS clients and SDK, or a route module. */
const serverParts = [
  /^core\/db\//,
  /^core\/aws\//,
  /^core\/api\//,
  /node_modules\/@aws-sdk\//,
  /node_modules\/@smithy\//,
  /node_modules\/@hono\//,
  /node_modules\/pg\//,
];

describe("the capydb bundle (dist/cli/capydb.mjs)", () => {
  it("carries nothing of the server: no core/db, core/aws, route module, AWS SDK, Hono or pg", () => {
    expect(inputs.length).toBeGreaterThan(10); // the metafile was read
    expect(inputs.filter((p) => serverParts.some((re) => re.test(p)))).toEqual([]);
  });

  it("takes from core/ only the wire contract and the ground floor under it (zod.ts, ids.ts)", () => {
    const core = inputs.filter((p) => p.startsWith("core/"));
    expect(core).toContain("core/contract/backups.ts");
    expect(core.filter((p) => !p.startsWith("core/contract/") && p !== "core/zod.ts" && p !== "core/ids.ts")).toEqual([]);
  });
});
