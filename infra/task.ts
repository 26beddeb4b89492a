import { resources } from "./resources.ts";
import { task as settings, taskVpc as vpcSettings } from "./settings.ts";

/**
 * Jobs too large for the worker's 15 minutes run here: the same job runner (functions/task.ts)
 * as an ECS Fargate task, started by the worker with the job id (core/tasks/aws.ts). The VPC has
 * no NAT: tasks sit in its public subnets with a public IP (settings.ts says why), and neither
 * the VPC nor the cluster costs anything while no task runs.
 */
export const taskVpc = new sst.aws.Vpc("TaskVpc", vpcSettings);

export const taskCluster = new sst.aws.Cluster("TaskCluster", { vpc: taskVpc });

export const largeJobs = new sst.aws.Task("LargeJobs", {
  cluster: taskCluster,
  architecture: settings.architecture,
  cpu: settings.cpu,
  memory: settings.memory,
  storage: settings.storage,
  image: { context: ".", dockerfile: settings.dockerfile },
  link: settings.link.map((name) => resources[name]) as sst.aws.TaskArgs["link"],
  environment: settings.environment,
  // `sst dev` would deploy a stub that proxies to this machine; the local stack runs tasks as
  // child processes instead (npm start), so dev mode deploys the real task.
  dev: false,
});
