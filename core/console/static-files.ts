import { readdirSync, readFileSync } from "node:fs";

/**
 * The console's static files (`static/`: its one script, its style sheet, its icon), by name.
 * Read from disk when the source runs (tsx, tests); in a Lambda bundle, the `console-static`
 * plugin of scripts/esbuild-plugins.mjs replaces this module with the same map inlined, so a
 * deploy needs no files beside the bundle.
 */
const dir = new URL("./static/", import.meta.url);
export const staticFiles: Record<string, string> = Object.fromEntries(
  readdirSync(dir)
    .sort()
    .map((name) => [name, readFileSync(new URL(name, dir), "utf8")]),
);
