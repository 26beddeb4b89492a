import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const core = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../core");
const sources = (readdirSync(core, { recursive: true }) as string[]).filter((f) => /\.tsx?$/.test(f));

/** The runner contract's names: declared once, in core/worker/runner.ts, and imported everywhere else. */
const contract = ["RunOutcome", "Attempt", "JobRunner", "lockOwner", "lockResource", "ignored", "toRunReport", "requeue"];

describe("the runner contract (core/worker/runner.ts)", () => {
  it("is declared in one place: no other module of core/ keeps a copy of it", () => {
    const declared = (name: string) =>
      sources
        .filter((f) => new RegExp(`^export (?:async )?(?:interface|function|const|type) ${name}\\b`, "m").test(readFileSync(path.join(core, f), "utf8")))
        .map((f) => `core/${f.split(path.sep).join("/")}`);
    expect(Object.fromEntries(contract.map((n) => [n, declared(n)]))).toEqual(Object.fromEntries(contract.map((n) => [n, ["core/worker/runner.ts"]])));
  });
});
