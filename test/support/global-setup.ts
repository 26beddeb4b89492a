import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chmodSync } from "node:fs";
import type { TestProject } from "vitest/node";
import { startInfra, type Infra } from "../../local/stack.ts";
import { freePort } from "../../local/wait.ts";
import { randomBytes } from "node:crypto";

declare module "vitest" {
  export interface ProvidedContext {
    infra: {
      endpoint: string;
      dynamodbEndpoint: string;
      fauxqsEndpoint: string;
      postgresUrl: string;
      postgresPort: number;
      postgresDataDir: string;
      secretKey: string;
    };
  }
}

let infra: Infra | undefined;
let dir: string | undefined;

/**
 * Starts DynamoDB Local, fauxqs and PostgreSQL once for the whole run (not per file); every test
 * file then makes its own table, queue, bucket and databases. Everything is stopped at the end.
 */
export async function setup(project: TestProject): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), "capydb-test-"));
  chmodSync(dir, 0o755); // the postgres user must reach its data directory
  const ports = { aws: await freePort(), dynamodb: await freePort(), fauxqs: await freePort(), postgres: await freePort() };
  infra = await startInfra({ dir, persist: false, ports, postgresPassword: randomBytes(12).toString("hex") });
  project.provide("infra", {
    endpoint: infra.endpoint,
    dynamodbEndpoint: infra.dynamo.endpoint,
    fauxqsEndpoint: infra.fauxqsEndpoint,
    postgresUrl: infra.postgres.url,
    postgresPort: infra.postgres.port,
    postgresDataDir: join(dir, "postgres"),
    secretKey: randomBytes(32).toString("base64"),
  });
}

export async function teardown(): Promise<void> {
  await infra?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}
