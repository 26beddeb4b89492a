import { grantStatements, inlinePolicy, resources } from "./resources.ts";
import { archiver as settings, grants } from "./settings.ts";
import { taskCluster, taskSecretParameters } from "./task.ts";

/**
 * The WAL archive's long-running side (functions/archiver.ts, core/wal/archiver.ts): one receiver
 * per archived cluster streaming its WAL to S3, the due base backups, the continuity sweep and
 * retention. An always-on ECS Fargate service of one task, in the task's cluster (the shared VPC's
 * private subnets, leaving through the NAT's fixed addresses customers allow) and from the task's
 * image, run with the archiver's entrypoint. Its health is watched from outside: the dispatcher
 * publishes each cluster's lag from the index, and WalArchiveLag alarms when it stops moving.
 */
export const archiverService = new sst.aws.Service("Archiver", {
  cluster: taskCluster,
  architecture: settings.architecture,
  cpu: settings.cpu,
  memory: settings.memory,
  storage: settings.storage,
  image: { context: ".", dockerfile: settings.dockerfile },
  entrypoint: [...settings.entrypoint],
  link: settings.link.map((name) => resources[name]) as sst.aws.ServiceArgs["link"],
  environment: { ...settings.environment },
  // The cluster key as the task gets it: ECS reads the SecureString parameter when the container starts.
  ssm: { CAPYDB_SECRET_KEY: taskSecretParameters.CAPYDB_SECRET_KEY.arn },
  scaling: { min: settings.desiredCount, max: settings.desiredCount, cpuUtilization: false, memoryUtilization: false },
  transform: {
    taskRole: { inlinePolicies: inlinePolicy(grantStatements(grants.archiver)) },
    executionRole: { inlinePolicies: inlinePolicy([{ actions: ["ssm:GetParameters"], resources: [taskSecretParameters.CAPYDB_SECRET_KEY.arn] }]) },
    // Never two at once (they would fight over each cluster's replication slot): stop, then start.
    service: { deploymentMaximumPercent: 100, deploymentMinimumHealthyPercent: 0 },
  },
  // Deployed in `sst dev` too: `npm start` runs its own archiver locally.
  dev: false,
});
