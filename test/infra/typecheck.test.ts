import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// `npm run typecheck:infra` installs SST's platform (npm, ~20 s, 300 MB) when it is missing;
// the test suite does not pay for that: CI runs the script itself. Once installed, it is cheap.
const installed = existsSync(path.join(repoRoot, ".sst/platform/config.d.ts"));

describe("sst.config.ts against SST's real types", () => {
  it.skipIf(!installed)(
    installed ? "typechecks (npm run typecheck:infra)" : "typechecks (SKIPPED: .sst/platform missing; run `npm run typecheck:infra`)",
    { timeout: 120_000 },
    () => {
      let output = "";
      try {
        output = execFileSync("npm", ["run", "--silent", "typecheck:infra"], {
          cwd: repoRoot,
          encoding: "utf8",
          stdio: "pipe",
        });
      } catch (e) {
        const err = e as { stdout?: string; stderr?: string };
        expect.fail(`typecheck:infra failed:\n${err.stdout ?? ""}${err.stderr ?? ""}`);
      }
      expect(output.trim()).toBe("");
    },
  );
});
