import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { zipDirectory } from "../scripts/zip-dir.ts";
import { functionArgs, verifyClusterEnvironment } from "./resources.ts";
import {
  architecture,
  functions,
  pgLayerDir,
  pgLayerManifest,
  pgLayerZip,
  pgMajors,
  runtime,
  taskThreshold,
  workerMaxConcurrency,
  workerSubscription,
} from "./settings.ts";
import { vpc } from "./network.ts";
import { jobs } from "./storage.ts";
import { largeJobs } from "./task.ts";

/**
 * The PostgreSQL client tools as a Lambda layer: either one published before (its ARN in
 * CAPYDB_PG_LAYER_ARN) or the directory scripts/build-pg-layer.sh leaves in dist/pg-layer,
 * which SST zips and publishes here. A missing or foreign-architecture build fails the deploy
 * with a message that says what to run, instead of a worker that cannot find pg_dump.
 */
function pgLayerArn(): $util.Input<string> {
  const published = process.env.CAPYDB_PG_LAYER_ARN;
  if (published) return published;

  const root = $cli.paths.root;
  const dir = path.join(root, pgLayerDir);
  const manifestPath = path.join(root, pgLayerManifest);
  if (!existsSync(dir) || !existsSync(manifestPath)) {
    throw new Error(
      `pg layer not built: run scripts/build-pg-layer.sh (needs Docker) to create ${pgLayerDir}, ` + `or set CAPYDB_PG_LAYER_ARN to a published layer`,
    );
  }
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { arch?: string };
  if (manifest.arch !== architecture) {
    throw new Error(
      `pg layer in ${pgLayerDir} is built for ${manifest.arch}, the worker runs on ${architecture}: ` +
        `rebuild it with ARCH=${architecture} scripts/build-pg-layer.sh`,
    );
  }
  // The layer's zip, written here with every entry's Unix mode (pg_dump must stay executable):
  // Pulumi's FileArchive of a directory is reported to drop modes (pulumi/pulumi#3593); given a
  // .zip file, it uploads that file as it is.
  const zip = path.join(root, pgLayerZip);
  zipDirectory(dir, zip);
  return new aws.lambda.LayerVersion("PgTools", {
    layerName: `${$app.name}-${$app.stage}-pgtools`,
    description: `pg_dump, pg_restore, psql for PostgreSQL ${pgMajors.join(", ")} (${architecture})`,
    code: new $util.asset.FileArchive(zip),
    compatibleArchitectures: [architecture],
    compatibleRuntimes: [runtime],
  }).arn;
}

/** The job consumer: one SQS message (a job id) per invocation, failures reported per record. */
export const worker = jobs.subscribe(
  functionArgs(functions.worker, {
    layers: [pgLayerArn()],
    // Private subnets behind the NAT's fixed addresses (infra/network.ts).
    vpc,
    // Jobs above the threshold go to the task (core/worker/offload.ts). Not a link: a link to a
    // Task grants ecs:* on the cluster's tasks; the worker may start this task and nothing more.
    environment: {
      ...verifyClusterEnvironment(),
      CAPYDB_TASK_THRESHOLD: taskThreshold,
      CAPYDB_TASK: $jsonStringify({
        cluster: largeJobs.cluster,
        taskDefinition: largeJobs.taskDefinition,
        subnets: largeJobs.subnets,
        securityGroups: largeJobs.securityGroups,
        assignPublicIp: largeJobs.assignPublicIp,
        containers: largeJobs.containers,
      }),
    },
    permissions: [
      {
        actions: ["ecs:RunTask"],
        resources: [largeJobs.taskDefinition],
        conditions: [{ test: "ArnEquals", variable: "ecs:cluster", values: [largeJobs.cluster] }],
      },
      {
        actions: ["iam:PassRole"],
        resources: [largeJobs.nodes.taskRole.arn, largeJobs.nodes.executionRole.arn],
        conditions: [{ test: "StringEquals", variable: "iam:PassedToService", values: ["ecs-tasks.amazonaws.com"] }],
      },
    ],
  }),
  {
    ...workerSubscription,
    // Excess job messages wait in the queue for a free slot (they are not throttled into retries).
    transform: { eventSourceMapping: { scalingConfig: { maximumConcurrency: workerMaxConcurrency } } },
  },
);
