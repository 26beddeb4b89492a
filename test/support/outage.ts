import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { createAwsClients, type AwsTimeouts } from "../../core/aws/clients.ts";
import { createApiKey } from "../../core/auth/keys.ts";
import { createCluster, createOrganization, createProject } from "../../core/orgs/orgs.ts";
import { startDynamoLocal } from "../../local/dynamodb.ts";
import { ensureTable } from "../../local/resources.ts";
import { LOCAL_REGION } from "../../local/stack.ts";
import { freePort } from "../../local/wait.ts";
import { uniq, type Tenant, type TestEnv } from "./env.ts";

/**
 * A DynamoDB Local of the test's own (the shared one must stay up for the other files), with a
 * tenant in it, that the test can stop to make a real outage.
 */
export async function createTable(env: TestEnv, opts: { timeouts?: AwsTimeouts } = {}) {
  const dynamo = await startDynamoLocal({ port: await freePort() });
  const raw = new DynamoDBClient({
    region: LOCAL_REGION,
    endpoint: dynamo.endpoint,
    credentials: { accessKeyId: "x", secretAccessKey: "x" },
    maxAttempts: 2,
  });
  // The service's own client (with the timeouts of `opts.timeouts`) for the app; `raw` seeds.
  const ddb = opts.timeouts
    ? createAwsClients({ region: LOCAL_REGION, endpoint: dynamo.endpoint }, opts.timeouts).ddb
    : DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });
  const table = uniq("outage");
  await ensureTable(raw, table);
  const deps = { ...env.deps, ddb: DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } }), table };
  const org = await createOrganization(deps, { name: uniq("org") });
  const cluster = await createCluster(deps, { name: uniq("cls"), url: env.infra.postgresUrl, insecure_tls: true });
  const project = await createProject(deps, { organization_id: org.id, cluster_id: cluster.id, name: "p", database_name: "x" });
  return {
    ddb,
    table,
    projectId: project.id,
    seedKey: async (_t: Tenant) => (await createApiKey(deps, { organization_id: org.id, name: "k", scopes: ["backups:read", "backups:write"] })).key,
    stop: () => dynamo.stop(),
    /** SIGSTOP: the process keeps its port (connections are accepted by the kernel) but never answers: a hung DynamoDB. */
    freeze: () => void dynamo.process.kill("SIGSTOP"),
    thaw: () => void dynamo.process.kill("SIGCONT"),
  };
}
