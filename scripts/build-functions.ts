/**
 * Bundles each Lambda entry point the way SST's node runtime does on deploy (esbuild: one ESM
 * file, minified, `createRequire` banner, only `sharp`/`pg-native` external, and the plugins of
 * scripts/esbuild-plugins.mjs, which the deploy uses too), into
 * `dist/functions/<name>/index.mjs`, and prints each bundle's size against its budget. The
 * tests check the budgets and the `handler` export on these files, so what they measure is what
 * a deploy ships.
 *
 * The AWS SDK v3 is bundled, not left external for the copy the nodejs24.x runtime carries:
 * that copy is whatever version AWS last rolled out (it changes under a deployed function and
 * lags the one package-lock.json pins), while @aws-sdk/lib-storage and Powertools expect the
 * exact client versions they were installed with. Bundled, the code deployed is the code tested;
 * esbuild keeps only the clients actually imported, and the budgets below include them.
 *
 * Usage: `npm run build:functions` (all) or `npm run build:functions -- api worker`; add
 * `--inputs` to list what weighs most in each bundle (`--inputs=30` for more).
 */
import { build, type BuildOptions, type Metafile } from "esbuild";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";
// Plain ESM (typed by esbuild-plugins.d.mts): SST's node runtime loads it by path on deploy.
import sharedPlugins from "./esbuild-plugins.mjs";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Entry points and their size budgets (minified bytes of index.mjs). */
export const bundles = {
  // 1 MiB keeps the API's cold start short. The API has no S3 client (it signs download URLs with the SDK's presigner
  // alone: core/aws/presign.ts) and no console (functions/console.ts serves /console).
  api: { entry: "functions/api.ts", maxBytes: 1024 * 1024 },
  worker: { entry: "functions/worker.ts", maxBytes: 2 * 1024 * 1024 },
  dispatch: { entry: "functions/dispatch.ts", maxBytes: 1024 * 1024 },
  deliver: { entry: "functions/deliver.ts", maxBytes: 1024 * 1024 },
  // Pages, one script, a style sheet, Hono's JSX runtime and zod/mini by name; no AWS SDK.
  console: { entry: "functions/console.ts", maxBytes: 160 * 1024 },
} as const;
export type BundleName = keyof typeof bundles;

export interface BundleResult {
  name: BundleName;
  /** Absolute path of the bundle. */
  file: string;
  bytes: number;
  gzipBytes: number;
  maxBytes: number;
  /** Names the bundle exports (the Lambda runtime calls `handler`). */
  exports: string[];
  /** The five largest inputs, to see what to trim when a budget breaks. */
  largestInputs: { path: string; bytes: number }[];
  /** The repository's own source files in the bundle (not node_modules), relative to the root. */
  sources: string[];
  /** Bytes in the bundle by package (`zod`, `@aws-sdk/client-dynamodb`) or source directory (`core/api`), largest first. */
  byPackage: { name: string; bytes: number }[];
  /** Every source file and package file the bundle carries code of (paths relative to the repository). */
  inputs: string[];
}

/** The banner SST prepends to ESM bundles: CommonJS dependencies call `require` and `__dirname`. */
const banner = [
  `import { createRequire as topLevelCreateRequire } from 'module';`,
  `const require = topLevelCreateRequire(import.meta.url);`,
  `import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"`,
  `const __filename = topLevelFileUrlToPath(import.meta.url)`,
  `const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))`,
].join("\n");

/** esbuild options SST's node runtime uses for a function; the bench builds its programs with them too. */
export function lambdaBuildOptions(): BuildOptions {
  return {
    absWorkingDir: root,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node24",
    minify: true,
    keepNames: true,
    mainFields: ["module", "main"],
    external: ["sharp", "pg-native"],
    banner: { js: banner },
    plugins: sharedPlugins,
    logLevel: "warning",
  };
}

export function outFile(name: BundleName, outDir = path.join(root, "dist/functions")): string {
  return path.join(outDir, name, "index.mjs");
}

/** Builds one bundle. Throws (esbuild's error) when the entry does not compile. */
export async function buildFunction(name: BundleName, outDir = path.join(root, "dist/functions")): Promise<BundleResult> {
  const { entry, maxBytes } = bundles[name];
  const file = outFile(name, outDir);
  rmSync(path.dirname(file), { recursive: true, force: true });
  mkdirSync(path.dirname(file), { recursive: true });
  const result = await build({ ...lambdaBuildOptions(), entryPoints: [entry], outfile: file, metafile: true });
  const rel = path.relative(root, file);
  const output = result.metafile.outputs[rel];
  const bytes = readFileSync(file);
  return {
    name,
    file,
    bytes: bytes.length,
    gzipBytes: gzipSync(bytes).length,
    maxBytes,
    exports: output?.exports ?? [],
    largestInputs: largest(output),
    sources: Object.keys(output?.inputs ?? {}).filter((p) => !p.includes("node_modules/")),
    byPackage: byPackage(output),
    inputs: Object.entries(output?.inputs ?? {})
      .filter(([, i]) => i.bytesInOutput > 0)
      .map(([p]) => p)
      .sort(),
  };
}

/** What each package or source directory adds to the bundle (the metafile's inputs, grouped). */
function byPackage(output: Metafile["outputs"][string] | undefined) {
  const sums = new Map<string, number>();
  for (const [p, i] of Object.entries(output?.inputs ?? {})) {
    const name = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p)?.[1] ?? (p.split("/").slice(0, -1).join("/") || p);
    sums.set(name, (sums.get(name) ?? 0) + i.bytesInOutput);
  }
  return [...sums].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes);
}

function largest(output: Metafile["outputs"][string] | undefined) {
  return Object.entries(output?.inputs ?? {})
    .map(([p, i]) => ({ path: p, bytes: i.bytesInOutput }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 5);
}

/** Whether an entry point exists yet (the functions are written alongside the infrastructure). */
export function entryExists(name: BundleName): boolean {
  return existsSync(path.join(root, bundles[name].entry));
}

const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;

async function main(args: string[]): Promise<number> {
  // `--inputs[=N]`: under each bundle, the N (default 15) packages and directories that weigh most.
  const flag = args.find((a) => a.startsWith("--inputs"));
  const inputs = flag ? Number(flag.split("=")[1] ?? 15) || 15 : 0;
  const argv = args.filter((a) => a !== flag);
  const names = (argv.length > 0 ? argv : Object.keys(bundles)) as BundleName[];
  let failed = false;
  for (const name of names) {
    if (!(name in bundles)) {
      console.error(`unknown function ${name}; known: ${Object.keys(bundles).join(", ")}`);
      return 2;
    }
    const r = await buildFunction(name);
    const over = r.bytes > r.maxBytes;
    const noHandler = !r.exports.includes("handler");
    failed ||= over || noHandler;
    console.log(
      `${name.padEnd(9)} ${path.relative(root, r.file).padEnd(32)} ${kib(r.bytes).padStart(9)} ` +
        `(gzip ${kib(r.gzipBytes)}, budget ${kib(r.maxBytes)})` +
        (over ? "  OVER BUDGET" : "") +
        (noHandler ? "  NO `handler` EXPORT" : ""),
    );
    if (inputs) {
      for (const p of r.byPackage.slice(0, inputs)) console.log(`    ${kib(p.bytes).padStart(9)}  ${p.name}`);
    }
  }
  return failed ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
