import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * esbuild plugins shared by scripts/build-functions.ts and SST's deploy build
 * (`nodejs.plugins` in infra/resources.ts), so both produce the same bundle.
 *
 * zod 4 re-exports every locale as `z.locales` (`export * as locales`), and a namespace object
 * defeats tree shaking: ~260 KiB of error messages in 60 languages, a quarter of the API bundle,
 * parsed at every cold start. The service only ever speaks English (zod's default, which
 * classic/schemas.js loads from ./en.js directly), so `z.locales` is reduced to `en`.
 */
const zodEnglishOnly = {
  name: "zod-english-only",
  setup(build) {
    build.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: 'export { default as en } from "./en.js";\n',
      resolveDir: args.path.replace(/[\\/]index\.js$/, ""),
      loader: "js",
    }));
  },
};

/**
 * The console's static files (core/console/static/) are read from disk by
 * core/console/static-files.ts when the source runs; a Lambda has no such directory beside its
 * bundle, so in a bundle that module becomes the same name-to-text map, inlined (script and
 * style sheet minified).
 */
const consoleStatic = {
  name: "console-static",
  setup(build) {
    build.onLoad({ filter: /[\\/]core[\\/]console[\\/]static-files\.ts$/ }, async (args) => {
      const dir = join(dirname(args.path), "static");
      const names = readdirSync(dir).sort();
      const files = {};
      for (const name of names) {
        const text = readFileSync(join(dir, name), "utf8");
        const loader = name.endsWith(".js") ? "js" : name.endsWith(".css") ? "css" : undefined;
        // Minified like the rest of the bundle: about half the bytes the function ships and parses.
        files[name] = loader ? (await build.esbuild.transform(text, { loader, minify: true, target: loader === "js" ? "es2020" : "chrome90" })).code : text;
      }
      return { contents: `export const staticFiles = ${JSON.stringify(files)};\n`, loader: "js", watchFiles: names.map((n) => join(dir, n)) };
    });
  },
};

export default [zodEnglishOnly, consoleStatic];
