import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
// Deliberately the first and only project import: a domain schema built with nothing of the API loaded.
import { backupItem } from "../core/backups/backups.ts";

describe("one z for every schema (core/zod.ts)", () => {
  it("a domain schema built before any API module already takes OpenAPI metadata, so import order does not matter", () => {
    const described = backupItem.shape.label.openapi({ description: "At most 200 characters." });
    expect(described.parse("nightly")).toBe("nightly");
    expect(typeof backupItem.openapi).toBe("function");
  });

  it("no module builds schemas from zod directly: `z` comes from core/zod.ts", () => {
    const files = execFileSync("git", ["ls-files", "*.ts", "*.tsx", "*.mts"], { encoding: "utf8" }).split("\n").filter(Boolean);
    const direct = files.filter((f) => f !== "core/zod.ts" && /^import \{[^}]*\bz\b[^}]*\} from "(zod|@hono\/zod-openapi)";$/m.test(readFileSync(f, "utf8")));
    expect(direct).toEqual([]);
  });
});
