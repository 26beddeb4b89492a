import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { loadConfig } from "/work/main/core/config.ts";
import { createDeps } from "/work/main/core/deps.ts";
import { provision, startInfra, localCredentials } from "/work/main/local/stack.ts";
import { freePort } from "/work/main/local/wait.ts";
import { createCluster, createOrganization, createProject } from "/work/main/core/orgs/orgs.ts";
import { requestBackup, listBackups, backupItem } from "/work/main/core/backups/backups.ts";
import { keys } from "/work/main/core/db/keys.ts";

const tmp = mkdtempSync(path.join(tmpdir(), "probe-")); chmodSync(tmp, 0o755);
const ports = { aws: await freePort(), dynamodb: await freePort(), fauxqs: await freePort(), postgres: await freePort() };
const infra = await startInfra({ dir: path.join(tmp, "infra"), persist: false, ports, postgresPassword: "x".repeat(12) });
try {
  const res = await provision(infra, { table: "tbl", queue: "qqq", bucket: "bkt" });
  const deps = createDeps(loadConfig({ AWS_REGION: "us-east-1", CAPYDB_AWS_ENDPOINT: infra.endpoint, CAPYDB_TABLE: "tbl", CAPYDB_QUEUE_URL: res.queueUrl, CAPYDB_BUCKET: "bkt", CAPYDB_SECRET_KEY: randomBytes(32).toString("base64"), CAPYDB_WORKER_ID: "w", LOG_LEVEL: "ERROR" }));
  const org = await createOrganization(deps, { name: "o" });
  const cl = await createCluster(deps, { name: "c", url: infra.postgres.url });
  const p = await createProject(deps, { organization_id: org.id, cluster_id: cl.id, name: "p", database_name: "postgres" });
  for (let i = 0; i < 100; i++) await requestBackup(deps, p, {});
  const direct = DynamoDBDocumentClient.from(new DynamoDBClient({ region: "us-east-1", endpoint: infra.dynamo.endpoint, credentials: localCredentials }));
  const q = { TableName: "tbl", KeyConditionExpression: "pk = :p AND begins_with(sk, :b)", ExpressionAttributeValues: { ":p": keys.project(p.id).pk, ":b": "BKP#" }, ScanIndexForward: false, Limit: 1000 };
  const time = async (label: string, fn: () => Promise<unknown>, n = 30) => {
    for (let i = 0; i < 5; i++) await fn();
    const t = performance.now();
    for (let i = 0; i < n; i++) await fn();
    console.log(label, ((performance.now() - t) / n).toFixed(2), "ms");
  };
  const one = await direct.send(new QueryCommand(q));
  console.log("items", one.Items?.length, "bytes", JSON.stringify(one.Items).length);
  await time("query direct to DDB Local", () => direct.send(new QueryCommand(q)));
  await time("query via proxy (deps.ddb)", () => deps.ddb.send(new QueryCommand(q)));
  await time("listBackups (query+zod)", () => listBackups(deps, p.id, 1000));
  await time("zod parse 100 items", async () => one.Items!.map((i) => backupItem.parse(i)), 200);
  const par = async (label: string, fn: () => Promise<unknown>, conc = 50, n = 300) => {
    const t = performance.now(); let k = 0;
    await Promise.all(Array.from({ length: conc }, async () => { while (k++ < n) await fn(); }));
    console.log(label, "conc", conc, (n / ((performance.now() - t) / 1000)).toFixed(0), "req/s");
  };
  await par("query direct parallel", () => direct.send(new QueryCommand(q)));
  await par("query via proxy parallel", () => deps.ddb.send(new QueryCommand(q)));
  await par("getProject-ish GetItem direct parallel", () => direct.send(new QueryCommand({ ...q, Limit: 1 })));
} finally { await infra.stop(); rmSync(tmp, { recursive: true, force: true }); }
process.exit(0);
