import { z } from "../zod.ts";

/**
 * Starts the task entry (functions/task.ts) for one job, somewhere with no time limit: a Fargate
 * task on AWS (aws.ts), a child process locally and in tests (local.ts). The worker calls it
 * after it has claimed the job for the launch (a conditional write), so one claim launches at most
 * one task.
 */
export interface TaskLauncher {
  /** Where tasks run, for log lines: "fargate", "local". */
  readonly kind: string;
  /**
   * Starts one task for `input.jobId`; resolves once it is started (not finished) with the id it
   * is recorded under as the job's `claimed_by`: `task:<ECS task ARN>` or `local-task:<pid>`.
   * Throws a TaskLaunchError saying why when no task was started.
   */
  launch(input: TaskInput): Promise<{ taskId: string }>;
}

/** What a task is told about its job (as environment variables: see taskEnv/readTaskInput). */
export interface TaskInput {
  jobId: string;
  /** The claim's attempt number: the task runs that attempt or nothing. */
  attempt: number;
  /** `claimed_by` of the launch claim, which the task takes over. */
  launchedBy: string;
}

/** Launch claim and task lease: Fargate places a task and pulls its image in 1-3 minutes. */
export const DEFAULT_TASK_LEASE_MS = 10 * 60_000;

/** No task was started; `message` says why (capacity, permissions, a missing entry point). */
export class TaskLaunchError extends Error {
  override name = "TaskLaunchError";
}

/** The job's `claimed_by` while the worker that claimed it is starting its task. */
export const launchClaim = (workerId: string) => `launch:${workerId}`;

/** A task's identity as recorded in `claimed_by`. */
export const fargateTaskId = (taskArn: string) => `task:${taskArn}`;
export const localTaskId = (pid: number) => `local-task:${pid}`;

export function taskEnv(input: TaskInput): Record<string, string> {
  return { CAPYDB_JOB_ID: input.jobId, CAPYDB_JOB_ATTEMPT: String(input.attempt), CAPYDB_LAUNCHED_BY: input.launchedBy };
}

const int = (name: string) =>
  z.coerce
    .number({ error: `${name} must be a number` })
    .int()
    .positive();

const taskEnvSchema = z.object({
  CAPYDB_JOB_ID: z.string().regex(/^job_[0-9a-z]{26}$/, "CAPYDB_JOB_ID must be a job id"),
  CAPYDB_JOB_ATTEMPT: int("CAPYDB_JOB_ATTEMPT"),
  CAPYDB_LAUNCHED_BY: z.string().startsWith("launch:", "CAPYDB_LAUNCHED_BY must be a launch claim"),
  /** The task's lease and heartbeat (defaults: 10 minutes, renewed every minute). */
  CAPYDB_TASK_LEASE_MS: int("CAPYDB_TASK_LEASE_MS").default(DEFAULT_TASK_LEASE_MS),
  CAPYDB_TASK_HEARTBEAT_MS: int("CAPYDB_TASK_HEARTBEAT_MS").default(60_000),
});

export interface TaskSettings extends TaskInput {
  leaseMs: number;
  heartbeatMs: number;
}

/** The task entry's own settings, from its environment. Throws one line naming the bad variable. */
export function readTaskInput(env: Record<string, string | undefined>): TaskSettings {
  const parsed = taskEnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? "");
    throw new Error(env[name] === undefined || env[name] === "" ? `missing setting ${name}` : `invalid setting ${name}: ${issue.message}`);
  }
  const e = parsed.data;
  return {
    jobId: e.CAPYDB_JOB_ID,
    attempt: e.CAPYDB_JOB_ATTEMPT,
    launchedBy: e.CAPYDB_LAUNCHED_BY,
    leaseMs: e.CAPYDB_TASK_LEASE_MS,
    heartbeatMs: e.CAPYDB_TASK_HEARTBEAT_MS,
  };
}
