import { build } from "esbuild";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { lambdaBuildOptions } from "../../scripts/build-functions.ts";
import { trackChild } from "./cleanup.ts";
import { procStatusKb, RESULT_PREFIX } from "./proc.ts";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Bundles the bench's child programs the way the Lambda bundles are built (one minified ESM file,
 * same plugins), so the worker child's memory is that of a deployed worker, not of a TypeScript
 * loader.
 */
export async function buildChildren(outDir: string): Promise<{ dump: string; api: string }> {
  await build({
    ...lambdaBuildOptions(),
    entryPoints: { dump: "bench/children/dump.ts", api: "bench/children/api-server.ts" },
    outdir: outDir,
    outExtension: { ".js": ".mjs" },
  });
  return { dump: path.join(outDir, "dump.mjs"), api: path.join(outDir, "api.mjs") };
}

export interface ChildRun<T> {
  result: T;
  wallMs: number;
  /** Highest VmRSS the parent saw while sampling, in kB. */
  sampledMaxRssKb: number;
}

/**
 * Runs a bundled child (`node file`) with `input` as JSON in BENCH_INPUT, samples its RSS every
 * `sampleMs`, and returns the JSON it printed on its `BENCH_RESULT ` line. Rejects on a non-zero
 * exit (with the tail of its stderr) or after `timeoutMs`.
 */
export function runChild<T>(
  file: string,
  input: unknown,
  env: NodeJS.ProcessEnv,
  opts: { timeoutMs: number; sampleMs?: number; args?: string[] },
): Promise<ChildRun<T>> {
  const started = performance.now();
  const child = trackChild(
    spawn(process.execPath, [file, ...(opts.args ?? [])], {
      env: { ...env, BENCH_INPUT: JSON.stringify(input) },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  let maxRss = 0;
  const sampler = setInterval(() => {
    const rss = child.pid ? procStatusKb(child.pid, "VmRSS") : undefined;
    if (rss && rss > maxRss) maxRss = rss;
  }, opts.sampleMs ?? 50);
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      clearInterval(sampler);
      clearTimeout(timer);
      const line = stdout.split("\n").find((l) => l.startsWith(RESULT_PREFIX));
      if (code !== 0 || !line) {
        reject(new Error(`${path.basename(file)} exited with ${code ?? signal}: ${stderr.trim().split("\n").slice(-8).join("\n")}`));
        return;
      }
      resolve({ result: JSON.parse(line.slice(RESULT_PREFIX.length)) as T, wallMs: performance.now() - started, sampledMaxRssKb: maxRss });
    });
  });
}
