/**
 * Bundles the task entry (functions/task.ts) with the functions' esbuild options into
 * `dist/task/index.mjs`, the file the task image runs (infra/task/Dockerfile runs this script in
 * its build stage). Usage: `npx tsx scripts/build-task.ts [outfile]`.
 */
import { build } from "esbuild";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { lambdaBuildOptions, root } from "./build-functions.ts";

export const taskEntry = "functions/task.ts";
export const taskBundle = "dist/task/index.mjs";

export async function buildTask(outfile = path.join(root, taskBundle)): Promise<string> {
  await build({ ...lambdaBuildOptions(), entryPoints: [taskEntry], outfile });
  return outfile;
}

/** The repository's own source files the task bundle holds (relative to the root), for the IAM test. */
export async function taskSources(outfile: string): Promise<string[]> {
  const result = await build({ ...lambdaBuildOptions(), entryPoints: [taskEntry], outfile, metafile: true });
  return Object.keys(result.metafile.inputs).filter((p) => !p.includes("node_modules/"));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(await buildTask(process.argv[2]));
}
