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

/** The archiver service's entry (functions/archiver.ts), bundled beside the task's in the same image. */
export const archiverEntry = "functions/archiver.ts";
export const archiverBundle = "dist/task/archiver.mjs";

export async function buildArchiver(outfile = path.join(root, archiverBundle)): Promise<string> {
  await build({ ...lambdaBuildOptions(), entryPoints: [archiverEntry], outfile });
  return outfile;
}

/** The repository's own source files the archiver bundle holds (relative to the root), for the IAM test. */
export async function archiverSources(outfile: string): Promise<string[]> {
  const result = await build({ ...lambdaBuildOptions(), entryPoints: [archiverEntry], outfile, metafile: true });
  return Object.keys(result.metafile.inputs).filter((p) => !p.includes("node_modules/"));
}

/** The repository's own source files the task bundle holds (relative to the root), for the IAM test. */
export async function taskSources(outfile: string): Promise<string[]> {
  const result = await build({ ...lambdaBuildOptions(), entryPoints: [taskEntry], outfile, metafile: true });
  return Object.keys(result.metafile.inputs).filter((p) => !p.includes("node_modules/"));
}

/** `build-task.ts [outfile]`: the task's bundle, and the archiver's beside it (`archiver.mjs`). */
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildTask(process.argv[2]);
  console.log(out);
  console.log(await buildArchiver(path.join(path.dirname(out), "archiver.mjs")));
}
