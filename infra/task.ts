import { grantStatements, inlinePolicy, resources, verifyClusterEnvironment } from "./resources.ts";
import { secrets } from "./secrets.ts";
import { vpc } from "./network.ts";
import { grants, task as settings } from "./settings.ts";

/**
 * Jobs too large for the worker's 15 minutes run here: the same job runner (functions/task.ts)
 * as an ECS Fargate task, started by the worker with the job id (core/tasks/aws.ts). Its cluster
 * is in the shared VPC (infra/network.ts): tasks run in the private subnets, without a public IP,
 * and reach customers' clusters from the NAT's fixed addresses.
 */
export const taskCluster = new sst.aws.Cluster("TaskCluster", { vpc });

/**
 * The task's secrets as SSM SecureString parameters (encrypted with the account's aws/ssm key,
 * no charge for standard parameters): the task definition names the parameter, ECS reads its
 * value with the execution role when the container starts.
 */
export const taskSecretParameters = Object.fromEntries(
  Object.entries(settings.secrets).map(([variable, secret]) => [
    variable,
    new aws.ssm.Parameter(`${secret}Parameter`, {
      name: `/${$app.name}/${$app.stage}/${secret}`,
      type: "SecureString",
      value: secrets[secret].value,
      description: `${secret} for the LargeJobs task (${variable})`,
    }),
  ]),
) as Record<keyof typeof settings.secrets, aws.ssm.Parameter>;

const parameterArns = Object.values(taskSecretParameters).map((p) => p.arn);

export const largeJobs = new sst.aws.Task("LargeJobs", {
  cluster: taskCluster,
  architecture: settings.architecture,
  cpu: settings.cpu,
  memory: settings.memory,
  storage: settings.storage,
  image: { context: ".", dockerfile: settings.dockerfile },
  link: settings.link.map((name) => resources[name]) as sst.aws.TaskArgs["link"],
  environment: { ...settings.environment, ...verifyClusterEnvironment() },
  ssm: Object.fromEntries(Object.entries(taskSecretParameters).map(([variable, p]) => [variable, p.arn])),
  transform: {
    // Exactly its grants (no link's every-action rights, no ECS Exec channels).
    taskRole: { inlinePolicies: inlinePolicy(grantStatements(grants.task)) },
    // SST's execution role may read every SSM parameter and secret of the account: this one reads
    // its own parameters only.
    executionRole: { inlinePolicies: inlinePolicy([{ actions: ["ssm:GetParameters"], resources: parameterArns }]) },
  },
  // `sst dev` would deploy a stub that proxies to this machine; the local stack runs tasks as
  // child processes instead (npm start), so dev mode deploys the real task.
  dev: false,
});
