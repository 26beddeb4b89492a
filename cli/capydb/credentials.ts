import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { z } from "../../core/zod.ts";

/**
 * What `capydb login` keeps: the key it was given and the API it belongs to, in the user's config
 * directory (`$XDG_CONFIG_HOME/capydb/credentials.json`, else `~/.config/capydb/...`), readable by
 * the user only (0600, in a 0700 directory). `--api-key` and `CAPYDB_API_KEY` still win over it.
 */
export const storedLogin = z.object({
  api_url: z.string(),
  api_key: z.string(),
  session_id: z.string(),
  device_name: z.string(),
  created_at: z.string(),
});
export type StoredLogin = z.infer<typeof storedLogin>;

export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME?.startsWith("/") ? env.XDG_CONFIG_HOME : join(env.HOME || homedir(), ".config");
  return join(base, "capydb", "credentials.json");
}

/** The stored login, or undefined when there is none (a damaged file reads as none, and says so on stderr). */
export function readLogin(env: NodeJS.ProcessEnv = process.env): StoredLogin | undefined {
  const path = credentialsPath(env);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  try {
    return storedLogin.parse(JSON.parse(text));
  } catch {
    process.stderr.write(`capydb: ignoring ${path}: it is not a login this CLI wrote (run \`capydb login\` again)\n`);
    return undefined;
  }
}

/** Writes the login atomically, 0600 from the first byte (never world-readable, even briefly). */
export function writeLogin(login: StoredLogin, env: NodeJS.ProcessEnv = process.env): string {
  const path = credentialsPath(env);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(login, null, 2) + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return path;
}

/** Forgets the stored login; true when there was one. */
export function removeLogin(env: NodeJS.ProcessEnv = process.env): boolean {
  const path = credentialsPath(env);
  const had = readLogin(env) !== undefined;
  rmSync(path, { force: true });
  return had;
}
