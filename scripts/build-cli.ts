/**
 * Bundles the customer CLI (`cli/capydb.ts`) into one ESM file, as a published package would ship
 * it, so that `npx capydb` starts plain Node on a prebuilt file instead of compiling TypeScript
 * through tsx at every start. Run by `npm install`/`npm ci` (`prepare`) and `npm run build:cli`.
 *
 * Beside the bundle, `capydb.inputs.json` lists the project's own source files it was built from:
 * bin/capydb.mjs runs the source instead when one of them is newer (a developer's edit is never
 * hidden behind a stale bundle).
 */
import { build } from "esbuild";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const cliBundle = path.join(root, "dist/cli/capydb.mjs");
export const cliInputs = path.join(root, "dist/cli/capydb.inputs.json");

/** Builds the bundle; answers its size and every input (node_modules included), relative to the root. */
export async function buildCli(outfile = cliBundle): Promise<{ bytes: number; inputs: string[] }> {
  rmSync(path.dirname(outfile), { recursive: true, force: true });
  mkdirSync(path.dirname(outfile), { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: ["cli/capydb.ts"],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // commander is CommonJS: its `require` calls need one in an ES module.
    banner: { js: `import { createRequire as __capydbCreateRequire } from "node:module";\nconst require = __capydbCreateRequire(import.meta.url);` },
    metafile: true,
    logLevel: "warning",
  });
  const inputs = Object.keys(result.metafile.inputs);
  const own = inputs.filter((p) => !p.includes("node_modules/"));
  writeFileSync(path.join(path.dirname(outfile), "capydb.inputs.json"), `${JSON.stringify(own)}\n`);
  const out = Object.values(result.metafile.outputs)[0];
  return { bytes: out?.bytes ?? 0, inputs };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { bytes, inputs } = await buildCli();
  console.log(`capydb   ${path.relative(root, cliBundle)}  ${(bytes / 1024).toFixed(0)} KiB from ${inputs.length} inputs`);
}
