#!/usr/bin/env node
// The prebuilt bundle (dist/cli/capydb.mjs, made by `npm install` through `prepare`, or `npm run
// build:cli`), as a published package ships it: plain Node, no TypeScript compiled at start. The
// TypeScript source through tsx when there is no bundle, when one of its source files was edited
// since it was built, or with CAPYDB_CLI_SOURCE=1.
import { existsSync, readFileSync, statSync } from "node:fs";
import module from "node:module";

const root = new URL("../", import.meta.url);
const bundle = new URL("dist/cli/capydb.mjs", root);

function bundleIsCurrent() {
  if (process.env.CAPYDB_CLI_SOURCE === "1" || !existsSync(bundle)) return false;
  try {
    const built = statSync(bundle).mtimeMs;
    const inputs = JSON.parse(readFileSync(new URL("dist/cli/capydb.inputs.json", root), "utf8"));
    return inputs.every((p) => statSync(new URL(p, root)).mtimeMs <= built);
  } catch {
    return false; // an input moved or went away: the source is the truth
  }
}

if (bundleIsCurrent()) {
  // Node 22.1+ keeps the bundle's compiled code on disk (os.tmpdir()/node-compile-cache) and reuses
  // it: about 40 ms of every later start; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
  module.enableCompileCache?.();
  await import(bundle.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../cli/capydb.ts");
}
