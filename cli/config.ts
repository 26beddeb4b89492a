import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, type Config } from "../core/config.ts";
import { localDir, localEnv, readLocalJson } from "../local/files.ts";

/**
 * The service's configuration for operator tools: the environment when it names the resources
 * (deployed stacks), otherwise the local stack's `.capydb/local.json`.
 */
export function operatorConfig(env: NodeJS.ProcessEnv = process.env): Config {
  if (env.CAPYDB_TABLE || env.SST_RESOURCE_Table) return loadConfig(env);
  const dir = localDir();
  const json = readLocalJson(dir);
  if (!json || !existsSync(join(dir, "secrets.json"))) {
    return loadConfig(env); // names the first missing setting
  }
  return loadConfig({ ...localEnv(dir, json), ...env });
}
