import { createDecipheriv } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";

type Env = Record<string, string | undefined>;

/** A link's properties as SST writes them: `{ "name": ... }`, `{ "url": ... }`, `{ "value": ... }`, plus `type`. */
export type SstLinks = Record<string, Record<string, unknown>>;

/**
 * The SST links a process was deployed with, read the way SST v4 delivers them, without the `sst`
 * package's global `Resource` proxy (which caches the first environment it sees and throws on a
 * name that is not linked; configuration wants a pure function of its input):
 *
 * - A Fargate task (and `sst dev`) gets each link as a variable `SST_RESOURCE_<Name>` holding the
 *   properties as JSON (.sst/platform/src/components/aws/fargate.ts, `Link.propertiesToEnv`).
 * - A Lambda function gets only `SST_RESOURCE_App`, `SST_KEY` (32 random bytes, base64) and
 *   `SST_KEY_FILE` ("resource.enc", relative to the function's directory): SST's build writes the
 *   links, `{ "<Name>": { ...properties, "type": ... } }` as JSON, into that file sealed with
 *   AES-256-GCM under SST_KEY with a nonce of 12 zero bytes, the 16-byte tag appended
 *   (SST's pkg/runtime `Build`; node_modules/sst/dist/resource/node.js reads it back the same way).
 *
 * The file wins over a variable of the same name, as in SST's reader. Throws an Error naming the
 * setting (never its content) when a variable is not JSON or the file cannot be opened.
 */
export function readSstLinks(env: Env, cwd: string = env.LAMBDA_TASK_ROOT || process.cwd()): SstLinks {
  const links: SstLinks = {};
  for (const [key, raw] of Object.entries(env)) {
    if (!key.startsWith("SST_RESOURCE_") || !raw) continue;
    const value = parseJson(raw, `invalid setting ${key}: not JSON`);
    if (value && typeof value === "object") links[key.slice("SST_RESOURCE_".length)] = value as Record<string, unknown>;
  }
  const keyB64 = env.SST_KEY;
  const file = env.SST_KEY_FILE;
  if (keyB64 && file) Object.assign(links, openSealedLinks(keyB64, path.resolve(cwd, file)));
  return links;
}

function openSealedLinks(keyB64: string, file: string): SstLinks {
  const key = Buffer.from(keyB64, "base64");
  if (key.length !== 32) throw new Error("invalid setting SST_KEY: must be 32 bytes, base64-encoded");
  let sealed: Buffer;
  try {
    sealed = readFileSync(file);
  } catch (err) {
    throw new Error(`invalid setting SST_KEY_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  if (sealed.length < 16) throw new Error(`invalid setting SST_KEY_FILE: ${file} is too short to be SST's sealed links`);
  let plain: string;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.alloc(12, 0));
    decipher.setAuthTag(sealed.subarray(-16));
    plain = Buffer.concat([decipher.update(sealed.subarray(0, -16)), decipher.final()]).toString("utf8");
  } catch {
    // A key from another deploy, or a file from another function: GCM's tag does not match.
    throw new Error(`invalid setting SST_KEY_FILE: ${file} does not open with SST_KEY`);
  }
  const links = parseJson(plain, `invalid setting SST_KEY_FILE: ${file} does not hold JSON`);
  if (!links || typeof links !== "object" || Array.isArray(links)) {
    throw new Error(`invalid setting SST_KEY_FILE: ${file} does not hold an object of links`);
  }
  return links as SstLinks;
}

function parseJson(raw: string, message: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new Error(message);
  }
}
