import { task } from "sst/aws/task";
import type { TaskResource } from "../config.ts";
import { fargateTaskId, taskEnv, TaskLaunchError, type TaskLauncher } from "./launcher.ts";

/** Why RunTask started nothing, in words an operator can act on (from the ECS error). */
export async function runErrorReason(err: unknown): Promise<string> {
  if (err instanceof task.RunError) {
    const res = err.response;
    // A 200 with no task means RunTask answered `failures` (its body was read by the SDK): in
    // practice no Fargate capacity in the subnets' zones, or the account's task quota.
    if (res.ok) return "ECS started no task (RunTask reported a failure, such as no Fargate capacity or the account's task quota)";
    const body = res.bodyUsed ? "" : await res.text().catch(() => "");
    let detail = body.slice(0, 300);
    try {
      const json = JSON.parse(body) as { __type?: string; message?: string; Message?: string };
      detail = [json.__type?.split("#").pop(), json.message ?? json.Message].filter(Boolean).join(": ");
    } catch {
      // not JSON: keep the text
    }
    return `ECS refused RunTask (HTTP ${res.status}${detail ? `: ${detail}` : ""})`;
  }
  return `could not call ECS: ${err instanceof Error ? err.message : String(err)}`;
}

/** Fargate tasks through `task.run` of SST's SDK (ECS RunTask, FARGATE capacity). */
export function awsTaskLauncher(resource: TaskResource): TaskLauncher {
  return {
    kind: "fargate",
    async launch(input) {
      try {
        const started = await task.run(resource, taskEnv(input));
        return { taskId: fargateTaskId(started.arn) };
      } catch (err) {
        throw new TaskLaunchError(await runErrorReason(err));
      }
    },
  };
}
