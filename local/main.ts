/**
 * `npm start`: the whole backup service on this machine, on embedded stand-ins of DynamoDB, SQS
 * and S3 and a local PostgreSQL, with no AWS account and no Docker.
 */
import { serve, type ServerType } from "@hono/node-server";
import pg from "pg";
import { createApp } from "../core/api/app.ts";
import { s3HealthCheck } from "../core/api/health-s3.ts";
import { loadConfig, ConfigError } from "../core/config.ts";
import { createConsoleApp, withConsole } from "../core/console/app.ts";
import { createDeps, createDepsWithoutS3 } from "../core/deps.ts";
import { createDispatchHandler } from "../core/dispatch/handler.ts";
import { createLogger, localLogFormat } from "../core/log.ts";
import { getClusterConnection } from "../core/orgs/orgs.ts";
import { DEFAULT_TASK_LEASE_MS } from "../core/tasks/launcher.ts";
import { localTaskLauncher } from "../core/tasks/local.ts";
import { createWorkerHandler } from "../core/worker/handler.ts";
import { createDeliveryHandler } from "../core/webhooks/handler.ts";
import { relayEvents } from "../core/webhooks/relay.ts";
import { join } from "node:path";
import { listPitrPins } from "../core/restores/points.ts";
import { enableArchive } from "../core/wal/archive.ts";
import { defaultArchiverOptions, startArchiver } from "../core/wal/archiver.ts";
import { ensureDemoDatabase } from "./demo.ts";
import { forgetChildren, recordChildren, stopLeftovers } from "./leftovers.ts";
import { localDir, localEnv, localSecrets, readLocalJson, writeLocalJson, type LocalJson } from "./files.ts";
import { startTicker, startWorkerLoop } from "./loops.ts";
import { MissingDependencyError } from "./postgres.ts";
import { seedLocal } from "./seed.ts";
import { LOCAL_REGION, provision, startInfra, type Infra } from "./stack.ts";
import { portIsFree } from "./wait.ts";

const envPort = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ConfigError(`invalid setting ${name}: must be a port number`);
  return n;
};

/** How long one part of the service (a loop, the API, the archiver) may take to stop before the next is stopped anyway. */
const STOP_PART_MS = 15_000;

async function main(): Promise<void> {
  // A closed terminal (Ctrl-C reaches npm too, which exits and takes the pty with it) makes writes
  // fail with EIO or EPIPE: what is left to say is lost, but the stand-ins must still be stopped.
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);
  const started = performance.now();
  const logFormat = localLogFormat(); // readable lines on a terminal, JSON lines when piped
  const dir = localDir();
  const ports = {
    api: envPort("PORT", 3000),
    aws: envPort("CAPYDB_AWS_PORT", 4566),
    dynamodb: envPort("CAPYDB_DYNAMODB_PORT", 8000),
    fauxqs: envPort("CAPYDB_FAUXQS_PORT", 4567),
    postgres: envPort("CAPYDB_PG_PORT", 54329),
  };
  // After a kill -9, PostgreSQL and DynamoDB Local (in process groups of their own) still hold the ports.
  const stopped = await stopLeftovers(dir);
  if (stopped) process.stderr.write(`capydb: ${stopped}\n`);
  for (const [name, port] of Object.entries(ports)) {
    // A leftover just stopped may take a moment to let go of its port (a JVM on a busy machine).
    for (let i = 0; stopped && i < 100 && !(await portIsFree(port)); i++) await new Promise((r) => setTimeout(r, 200));
    if (!(await portIsFree(port))) {
      throw new MissingDependencyError(
        `port ${port} (${name}) is already in use: stop what uses it (\`ss -ltnp 'sport = :${port}'\`) or choose another with ${name === "api" ? "PORT" : `CAPYDB_${name.toUpperCase()}_PORT`}`,
      );
    }
  }
  const secrets = localSecrets(dir);
  const stoppers: (() => Promise<void>)[] = [];
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    // Each part gets a bounded time to stop, so the stand-ins (stopped last) are always stopped:
    // a part that overruns is left to the process's exit.
    for (const stop of stoppers.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([stop().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, STOP_PART_MS)))]);
      clearTimeout(timer);
    }
    forgetChildren(dir);
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown(0));
  process.on("SIGTERM", () => void shutdown(0));
  // The stand-ins run in process groups of their own (a Ctrl-C reaches only this process, which
  // stops them last): a closed terminal must stop them through here too.
  process.on("SIGHUP", () => void shutdown(0));

  // startInfra stops whatever it had started when one stand-in fails, so a failure here leaves nothing behind.
  const infra: Infra = await startInfra({ dir, persist: true, ports, postgresPassword: secrets.postgres_password, ownProcessGroups: true });
  stoppers.push(infra.stop);
  recordChildren(dir, [
    { what: "PostgreSQL", pid: infra.postgres.process.pid },
    { what: "DynamoDB Local", pid: infra.dynamo.process.pid },
  ]);
  try {
    const names = { table: "capydb-backups", queue: "capydb-jobs", bucket: "capydb-backups", deliveryQueue: "capydb-webhook-deliveries" };
    const resources = await provision(infra, names);
    await ensureDemoDatabase(infra.postgres.url, "demo");

    const previous = readLocalJson(dir);
    const partial: Omit<LocalJson, "api_key" | "organization_id" | "project_id"> = {
      api_url: `http://127.0.0.1:${ports.api}`,
      aws: {
        endpoint: infra.endpoint,
        region: LOCAL_REGION,
        table: resources.table,
        queue_url: resources.queueUrl,
        dlq_url: resources.dlqUrl,
        bucket: resources.bucket,
        delivery_queue_url: resources.deliveryQueueUrl,
      },
      postgres: { url: infra.postgres.url },
    };
    Object.assign(process.env, localEnv(dir, { ...partial, api_key: "", organization_id: "", project_id: "" }));
    // The local stack, and only it, lets webhook endpoints point at receivers on this machine.
    process.env.CAPYDB_WEBHOOKS_ALLOW_LOOPBACK_HTTP ??= "1";
    const config = loadConfig();
    const deps = createDeps(config, { log: createLogger(config.logLevel, undefined, logFormat) });
    const seed = await seedLocal(deps, { clusterUrl: infra.postgres.url, databaseName: "demo", previousApiKey: previous?.api_key });
    writeLocalJson(dir, { ...partial, api_key: seed.apiKey, organization_id: seed.organizationId, project_id: seed.projectId });

    const app = createApp({
      // The API's own AWS clients, with the API's short timeouts (503 within seconds when DynamoDB
      // hangs), and like the deployed API no S3 client (it signs download URLs only).
      deps: createDepsWithoutS3(config, { log: deps.log }, "api"), // one logger (and log format) for the process
      clerk: config.clerk,
      healthChecks: {
        s3: s3HealthCheck(deps),
        postgres: async () => {
          const client = new pg.Client({ connectionString: infra.postgres.url, connectionTimeoutMillis: 1500 });
          await client.connect();
          try {
            await client.query("SELECT 1");
          } finally {
            await client.end();
          }
        },
      },
    });
    const server: ServerType = await new Promise((resolve, reject) => {
      // One origin, as deployed: /console to the console app (its own function on AWS), the rest to the API.
      const fetch = withConsole(app, createConsoleApp({ clerk: config.clerk !== undefined }));
      const s = serve({ fetch, port: ports.api, hostname: "127.0.0.1" }, () => resolve(s));
      s.once("error", reject);
    });
    stoppers.push(() => new Promise<void>((r) => server.close(() => r())));
    const verificationServer = config.verifyClusterId ? await getClusterConnection(deps, config.verifyClusterId) : undefined;
    // Jobs above CAPYDB_TASK_THRESHOLD run as "tasks": child processes of functions/task.ts.
    const tasks = localTaskLauncher();
    stoppers.push(() => tasks.stopAll());
    const offload = { launcher: tasks, thresholdBytes: config.taskThresholdBytes, leaseMs: DEFAULT_TASK_LEASE_MS };
    const worker = startWorkerLoop(
      deps,
      createWorkerHandler(deps, { verificationServer, verificationClusterId: config.verifyClusterId, offload, clusterJobCap: config.clusterJobCap }),
    );
    stoppers.push(() => worker.stop());
    const ticker = startTicker(deps, createDispatchHandler(deps, { baseBackupAt: config.baseBackupAt }));
    stoppers.push(() => ticker.stop());
    // Webhooks: the outbox relay every two seconds (the deployed dispatcher relays once a minute)
    // and the deliveries loop, which feeds the deliveries queue to the delivery function's handler.
    const relay = startTicker(deps, () => relayEvents(deps), 2_000, "webhook relay");
    stoppers.push(() => relay.stop());
    const deliveries = startWorkerLoop(deps, createDeliveryHandler(deps), { queueUrl: resources.deliveryQueueUrl, name: "webhook-deliveries", batchSize: 10 });
    stoppers.push(() => deliveries.stop());

    // The WAL archive: the local cluster archives continuously (a base backup at once on a fresh
    // start), the receiver and base backups in this process as the archiver service does deployed.
    await enableArchive(deps, seed.clusterId);
    const archiver = startArchiver(deps, {
      ...defaultArchiverOptions(process.env.CAPYDB_WAL_SPOOL_DIR ?? join(dir, "wal-spool")),
      pinnedTimes: async (clusterId) => (await listPitrPins(deps, clusterId)).map((p) => new Date(p.pitr_time)),
    });
    stoppers.push(() => archiver.stop());

    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    process.stdout.write(
      [
        "",
        `CapyDB backups is running (ready in ${seconds}s)`,
        `  API       http://127.0.0.1:${ports.api}   (health: /health, OpenAPI: /v1/openapi.json)`,
        `  Console   http://127.0.0.1:${ports.api}/console   (sign in with the API key below)`,
        `  API key   ${seed.apiKey}`,
        `  Project   ${seed.projectId} (database "demo")`,
        `  Settings  ${dir}/local.json`,
        "",
        "Try:",
        `  curl -s -X POST -H "Authorization: Bearer ${seed.apiKey}" http://127.0.0.1:${ports.api}/v1/projects/${seed.projectId}/backups`,
        `  curl -s -H "Authorization: Bearer ${seed.apiKey}" http://127.0.0.1:${ports.api}/v1/projects/${seed.projectId}/backups`,
        "",
        "Ctrl-C stops everything; data stays in .capydb/ for the next start.",
        "",
      ].join("\n"),
    );
  } catch (err) {
    await infra.stop().catch(() => undefined);
    forgetChildren(dir);
    throw err;
  }
}

main().catch((err: unknown) => {
  const known = err instanceof MissingDependencyError || err instanceof ConfigError;
  process.stderr.write(`capydb: ${known ? (err as Error).message : `could not start: ${err instanceof Error ? err.message : String(err)}`}\n`);
  process.exit(1);
});
