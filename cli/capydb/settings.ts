import { join } from "node:path";
import { localDir, readLocalJson, type LocalJson } from "../../local/files.ts";
import { readLogin } from "./credentials.ts";
import { CliError, exitCodes } from "./errors.ts";

/** Where a setting came from, so error messages can say which one to fix. */
export type Source = "flag" | "env" | "login" | "local.json";

export interface Setting {
  value: string;
  source: Source;
}

export interface Settings {
  apiUrl?: Setting;
  apiKey?: Setting;
  project?: Setting;
  /** The `local.json` that was read, for messages (absent when there is none). */
  localJsonPath?: string;
}

export interface GlobalFlags {
  apiUrl?: string;
  apiKey?: string;
  project?: string;
}

const describe: Record<Source, Record<"apiUrl" | "apiKey" | "project", string>> = {
  flag: { apiUrl: "--api-url", apiKey: "--api-key", project: "--project" },
  env: { apiUrl: "CAPYDB_API_URL", apiKey: "CAPYDB_API_KEY", project: "CAPYDB_PROJECT" },
  login: { apiUrl: "the API of `capydb login`", apiKey: "the key of `capydb login`", project: "-" },
  "local.json": { apiUrl: "api_url in .capydb/local.json", apiKey: "api_key in .capydb/local.json", project: "project_id in .capydb/local.json" },
};

/** Names a setting's origin: `--project`, `CAPYDB_PROJECT` or `project_id in .capydb/local.json`. */
export const sourceName = (name: "apiUrl" | "apiKey" | "project", s: Setting) => describe[s.source][name];

const normalizeUrl = (url: string) => url.replace(/\/+$/, "");

/**
 * Settings in order of precedence: flag, then environment, then `.capydb/local.json` (the local
 * stack writes it, so the CLI works against it with no flags). The local stack's key is only
 * paired with the local stack's URL: a key from local.json is never sent to another server.
 */
export function resolveSettings(flags: GlobalFlags, env: NodeJS.ProcessEnv = process.env): Settings {
  const dir = localDir();
  let local: LocalJson | undefined;
  try {
    local = readLocalJson(dir);
  } catch (err) {
    throw new CliError(`could not read ${join(dir, "local.json")}: ${(err as Error).message}`, exitCodes.usage);
  }
  const login = readLogin(env);
  const pick = (flag: string | undefined, envValue: string | undefined, localValue: string | undefined, loginValue?: string): Setting | undefined => {
    if (flag) return { value: flag, source: "flag" };
    if (envValue) return { value: envValue, source: "env" };
    if (loginValue) return { value: loginValue, source: "login" };
    if (localValue) return { value: localValue, source: "local.json" };
    return undefined;
  };
  const apiUrl = pick(flags.apiUrl, env.CAPYDB_API_URL, local?.api_url, login?.api_url);
  if (apiUrl) {
    apiUrl.value = normalizeUrl(apiUrl.value);
    if (!/^https?:\/\/[^/]/.test(apiUrl.value) || !URL.canParse(apiUrl.value)) {
      throw new CliError(`${sourceName("apiUrl", apiUrl)} is not an http(s) URL: ${apiUrl.value}`, exitCodes.usage);
    }
  }
  const localKeyFits = local && apiUrl && normalizeUrl(local.api_url) === apiUrl.value ? local.api_key : undefined;
  // The same rule for the key `capydb login` stored: only ever sent to the API that issued it.
  const loginKeyFits = login && apiUrl && normalizeUrl(login.api_url) === apiUrl.value ? login.api_key : undefined;
  return {
    apiUrl,
    apiKey: pick(flags.apiKey, env.CAPYDB_API_KEY, localKeyFits, loginKeyFits),
    project: pick(flags.project, env.CAPYDB_PROJECT, local?.project_id),
    localJsonPath: local ? join(dir, "local.json") : undefined,
  };
}

export function requireApiUrl(s: Settings): string {
  if (!s.apiUrl) {
    throw new CliError(
      "no API URL: pass --api-url or set CAPYDB_API_URL (or start the local stack with `npm start`, which writes .capydb/local.json)",
      exitCodes.usage,
    );
  }
  return s.apiUrl.value;
}

export function requireApiKey(s: Settings): string {
  if (!s.apiKey) throw new CliError("no API key: run `capydb login`, or pass --api-key or set CAPYDB_API_KEY", exitCodes.auth);
  return s.apiKey.value;
}

export function requireProject(s: Settings): string {
  if (!s.project) throw new CliError("no project: pass --project or set CAPYDB_PROJECT", exitCodes.usage);
  return s.project.value;
}
