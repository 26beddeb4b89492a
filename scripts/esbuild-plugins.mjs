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

export default [zodEnglishOnly];
