import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "../core/zod.ts";

/** Where the local stack keeps its data: `.capydb/` in the working directory (CAPYDB_HOME overrides). */
export const localDir = (cwd = process.cwd()) => resolve(process.env.CAPYDB_HOME ?? join(cwd, ".capydb"));

/** `.capydb/local.json`: a contract read by the CLI, scripts and users. Exactly these fields. */
export const localJsonSchema = z.object({
  api_url: z.string(),
  api_key: z.string(),
  organization_id: z.string(),
  project_id: z.string(),
  aws: z.object({
    endpoint: z.string(),
    region: z.string(),
    table: z.string(),
    queue_url: z.string(),
    dlq_url: z.string(),
    bucket: z.string(),
    /** The webhook deliveries queue (absent in files written before webhooks). */
    delivery_queue_url: z.string().optional(),
  }),
  postgres: z.object({ url: z.string() }),
});
export type LocalJson = z.infer<typeof localJsonSchema>;

export function readLocalJson(dir: string): LocalJson | undefined {
  const file = join(dir, "local.json");
  if (!existsSync(file)) return undefined;
  const parsed = localJsonSchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
  return parsed.success ? parsed.data : undefined;
}

export function writeLocalJson(dir: string, data: LocalJson): void {
  writeFileSync(join(dir, "local.json"), JSON.stringify(localJsonSchema.parse(data), null, 2) + "\n", { mode: 0o600 });
}

/** Secrets of the local stack, generated on first start and kept (mode 600) so restarts keep data readable. */
const secretsSchema = z.object({ postgres_password: z.string(), secret_key: z.string() });
export type LocalSecrets = z.infer<typeof secretsSchema>;

export function localSecrets(dir: string): LocalSecrets {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "secrets.json");
  if (existsSync(file)) return secretsSchema.parse(JSON.parse(readFileSync(file, "utf8")));
  const secrets = { postgres_password: randomBytes(18).toString("base64url"), secret_key: randomBytes(32).toString("base64") };
  writeFileSync(file, JSON.stringify(secrets, null, 2) + "\n", { mode: 0o600 });
  return secrets;
}

/** The service's environment variables for the local stack described by `local.json`. */
export function localEnv(dir: string, json: LocalJson): Record<string, string> {
  const secrets = localSecrets(dir);
  return {
    AWS_REGION: json.aws.region,
    CAPYDB_AWS_ENDPOINT: json.aws.endpoint,
    CAPYDB_TABLE: json.aws.table,
    CAPYDB_QUEUE_URL: json.aws.queue_url,
    CAPYDB_DLQ_URL: json.aws.dlq_url,
    CAPYDB_BUCKET: json.aws.bucket,
    CAPYDB_SECRET_KEY: secrets.secret_key,
    ...(json.aws.delivery_queue_url ? { CAPYDB_DELIVERY_QUEUE_URL: json.aws.delivery_queue_url } : {}),
  };
}
