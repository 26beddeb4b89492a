import { secrets } from "./secrets.ts";
import { type FunctionSettings, type LinkName, architecture, runtime } from "./settings.ts";
import { bucket, deliveries, jobs, jobsDlq, table } from "./storage.ts";

/** Every linkable resource by the name core/config.ts reads it under (`SST_RESOURCE_<Name>`). */
export const resources: Record<LinkName, unknown> = {
  Table: table,
  Jobs: jobs,
  JobsDlq: jobsDlq,
  Backups: bucket,
  Deliveries: deliveries,
  ...secrets,
};

/**
 * The `sst.aws.Function` arguments of one entry point, from its settings: SST bundles
 * `functions/<entry>.ts` with esbuild (ESM, minified, AWS SDK bundled), which
 * scripts/build-functions.ts mirrors so the tests measure what a deploy ships.
 */
export function functionArgs(
  settings: FunctionSettings,
  extra: {
    environment?: Record<string, $util.Input<string>>;
    layers?: $util.Input<string>[];
    permissions?: sst.aws.FunctionPermissionArgs[];
  } = {},
): sst.aws.FunctionArgs {
  return {
    handler: `functions/${settings.entry}.handler`,
    runtime,
    architecture,
    timeout: settings.timeout,
    memory: settings.memory,
    link: settings.link.map((name) => resources[name]),
    ...(settings.bucketObjectActions || extra.permissions
      ? {
          permissions: [
            ...(settings.bucketObjectActions
              ? [{ actions: [...settings.bucketObjectActions], resources: [$interpolate`${bucket.arn}/*`] }]
              : []),
            ...(extra.permissions ?? []),
          ],
        }
      : {}),
    environment: { ...settings.environment, ...extra.environment },
    ...(extra.layers ? { layers: extra.layers } : {}),
    // Same plugins as scripts/build-functions.ts (path relative to sst.config.ts).
    nodejs: { format: "esm", minify: true, plugins: "scripts/esbuild-plugins.mjs" },
  };
}
