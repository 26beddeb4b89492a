/**
 * The task entry: the same job runner as the worker function, for one job, with no time limit.
 * On AWS it is the Fargate task's command (infra/task.ts, image from infra/task/Dockerfile);
 * locally the worker starts it as a child process (core/tasks/local.ts). The worker that launched
 * it passes the job in CAPYDB_JOB_ID, CAPYDB_JOB_ATTEMPT and CAPYDB_LAUNCHED_BY; the rest of the
 * configuration is the worker's (core/config.ts). Exits 0 whatever became of the job (the job
 * record says), 1 when it could not start.
 */
import { loadConfig } from "../core/config.ts";
import { createDeps } from "../core/deps.ts";
import { getClusterConnection } from "../core/orgs/orgs.ts";
import { taskIdentity } from "../core/tasks/identity.ts";
import { readTaskInput } from "../core/tasks/launcher.ts";
import { runTaskJob } from "../core/worker/task.ts";

try {
  const input = readTaskInput(process.env);
  const config = loadConfig();
  const deps = createDeps(config, { workerId: await taskIdentity() });
  const verificationServer = config.verifyClusterId ? await getClusterConnection(deps, config.verifyClusterId) : undefined;
  // SIGTERM (ECS stops a task, Ctrl-C of npm start): exit at once, the lease lapses and the job
  // is retried, as after a crash; a half-made artifact is cleaned up by the next attempt.
  process.once("SIGTERM", () => process.exit(143));
  const outcome = await runTaskJob(deps, input, { verificationServer, clusterJobCap: config.clusterJobCap });
  deps.log.info("task finished", { job_id: input.jobId, task_id: deps.workerId, status: outcome.status, reason: outcome.reason });
  process.exit(0);
} catch (err) {
  process.stderr.write(`capydb task: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
