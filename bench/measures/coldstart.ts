import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { buildCli } from "../../scripts/build-cli.ts";
import { buildFunction, bundles, lambdaBuildOptions, type BundleName } from "../../scripts/build-functions.ts";
import { root, runChild } from "../lib/children.ts";
import type { BenchContext, Check, MeasureResult } from "../lib/context.ts";
import { median, round } from "../lib/stats.ts";

/** Imports one bundle in a fresh process and reports how long the import took. */
const importer = `
const t0 = performance.now();
await import(process.argv[2]);
const t1 = performance.now();
process.stdout.write("BENCH_RESULT " + JSON.stringify({ importMs: t1 - t0, sinceStartMs: t1 }) + "\\n");
process.exit(0);
`;

const hello = `
import { Hono } from "hono";
import { handle } from "hono/aws-lambda";
const app = new Hono();
app.get("/", (c) => c.text("hello"));
export const handler = handle(app);
`;

export async function measureColdStart(ctx: BenchContext): Promise<MeasureResult> {
  const dir = path.join(ctx.tmp, "bundles");
  mkdirSync(dir, { recursive: true });
  ctx.log("coldstart: building the Lambda bundles (scripts/build-functions.ts) and a bare Hono hello bundle");
  const built: Record<string, { file: string; bytes: number; maxBytes?: number; largestInputs?: { path: string; bytes: number }[] }> = {};
  for (const name of Object.keys(bundles) as BundleName[]) {
    const r = await buildFunction(name, dir);
    built[name] = { file: r.file, bytes: r.bytes, maxBytes: r.maxBytes, largestInputs: r.largestInputs };
  }
  const helloFile = path.join(dir, "hello", "index.mjs");
  await build({
    ...lambdaBuildOptions(),
    stdin: { contents: hello, resolveDir: root, loader: "ts", sourcefile: "hello.ts" },
    outfile: helloFile,
  });
  built.hello = { file: helloFile, bytes: statSync(helloFile).size };
  const importerFile = path.join(dir, "import.mjs");
  writeFileSync(importerFile, importer);

  // A child that only runs `import.mjs <bundle>`: same node, same env, one bundle per process.
  const runs = ctx.quick ? 5 : 11;
  const names = ["hello", ...Object.keys(bundles)];
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const wall: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i <= runs; i++) {
    for (const name of names) {
      const { result, wallMs } = await runImport(importerFile, built[name]!.file, ctx.childEnv);
      if (i === 0) continue; // first round warms the file cache
      times[name]!.push(result.importMs);
      wall[name]!.push(wallMs);
    }
  }
  const cli = await measureCliStart(ctx, runs);
  const med = (n: string) => median(times[n]!);
  const kb = (n: string) => round(built[n]!.bytes / 1024, 1);
  const apiKb = kb("api");
  const workerKb = kb("worker");
  const apiRatio = med("api") / med("hello");
  const checks: Check[] = [
    { key: "bundle.api_kb", value: apiKb, target: "<= 1024", pass: apiKb <= 1024 },
    { key: "bundle.worker_kb", value: workerKb, target: "<= 2048", pass: workerKb <= 2048 },
    // The CLI's own share of its start (over a bare node's, interleaved), so a busy machine's slower
    // process starts do not count against it: 250 ms over a quiet node's ~40 ms is the 300 ms goal.
    { key: "cli.help_over_node_ms", value: cli.help_over_node_ms, target: "<= 250 over node -e 0", pass: cli.help_over_node_ms <= 250 },
  ];
  const pf = (c: Check) => (c.pass ? "PASS" : "FAIL");
  const perBundle = Object.fromEntries(
    names.map((n) => [
      n,
      {
        kb: kb(n),
        import_median_ms: round(med(n), 1),
        import_ms: times[n]!.map((x) => round(x, 1)),
        process_wall_median_ms: round(median(wall[n]!), 1),
        ratio: round(med(n) / med("hello"), 2),
        largest_inputs_kb: built[n]!.largestInputs?.map((i) => ({ path: i.path, kb: round(i.bytes / 1024, 1) })),
      },
    ]),
  );
  return {
    figures: {
      bundle: { api_kb: apiKb, worker_kb: workerKb, dispatch_kb: kb("dispatch"), console_kb: kb("console"), hello_kb: kb("hello") },
      coldstart: {
        api_ratio: round(apiRatio, 2),
        worker_ratio: round(med("worker") / med("hello"), 2),
        dispatch_ratio: round(med("dispatch") / med("hello"), 2),
        runs,
        bundles: perBundle,
      },
      cli,
    },
    checks,
    rows: [
      ["bundle api", `${apiKb} KiB`, "", "", "<= 1024 KiB", pf(checks[0]!)],
      ["bundle worker", `${workerKb} KiB`, "", "", "<= 2048 KiB", pf(checks[1]!)],
      ...["api", "worker", "dispatch", "console"].map((n) => [
        `cold start ${n}`,
        `import ${perBundle[n]!.import_median_ms} ms (${kb(n)} KiB)`,
        `hello ${perBundle.hello!.import_median_ms} ms (${kb("hello")} KiB)`,
        `${perBundle[n]!.ratio}x`,
        "(report)",
        "",
      ]),
      [
        "cli capydb --help",
        `${cli.help_median_ms} ms (${cli.kb} KiB bundle)`,
        `node -e 0: ${cli.node_median_ms} ms`,
        `+${cli.help_over_node_ms} ms`,
        "<= +250 ms",
        pf(checks[2]!),
      ],
      ["cli npx capydb --help", `${cli.npx_median_ms} ms`, `npx node -e 0: ${cli.npx_node_median_ms} ms`, "", "(report: npx's own start)", ""],
    ],
  };
}

/**
 * The customer CLI's start as a user meets it: `bin/capydb.mjs --help` (what `npx capydb` and an
 * installed `capydb` run) in a fresh node, against a bare `node -e 0`, interleaved; and through npx
 * itself, whose own start (npm's) is most of that figure and none of the CLI's doing.
 */
async function measureCliStart(ctx: BenchContext, runs: number) {
  ctx.log("coldstart: building the CLI bundle (dist/cli/capydb.mjs, as npm install's prepare does)");
  const { bytes } = await buildCli();
  const wall = (cmd: string, args: string[]) => {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { cwd: root, env: { ...process.env, CAPYDB_CLI_SOURCE: "" }, stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${String(r.stderr).slice(0, 500)}`);
    return performance.now() - t0;
  };
  const help: number[] = [];
  const node: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const h = wall(process.execPath, [path.join(root, "bin", "capydb.mjs"), "--help"]);
    const n = wall(process.execPath, ["-e", "0"]);
    if (i === 0) continue; // warms the file cache and Node's compile cache
    help.push(h);
    node.push(n);
  }
  const npxRuns = ctx.quick ? 3 : 5;
  const npx: number[] = [];
  const npxNode: number[] = [];
  for (let i = 0; i < npxRuns; i++) {
    npx.push(wall("npx", ["capydb", "--help"]));
    npxNode.push(wall("npx", ["node", "-e", "0"]));
  }
  return {
    kb: round(bytes / 1024, 1),
    help_median_ms: round(median(help), 1),
    help_runs_ms: help.map((x) => round(x, 1)),
    node_median_ms: round(median(node), 1),
    help_over_node_ms: round(median(help) - median(node), 1),
    npx_median_ms: round(median(npx), 1),
    npx_node_median_ms: round(median(npxNode), 1),
  };
}

function runImport(importer: string, bundle: string, env: NodeJS.ProcessEnv) {
  return runChild<{ importMs: number; sinceStartMs: number }>(importer, null, env, { timeoutMs: 60_000, args: [pathToFileURL(bundle).href] });
}
