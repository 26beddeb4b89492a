import { z } from "../zod.ts";
import { fargateTaskId, localTaskId } from "./launcher.ts";

const taskMetadata = z.object({ TaskARN: z.string().startsWith("arn:") });

/**
 * This task's id as its launcher recorded it: on Fargate `task:<ARN>` from the ECS task metadata
 * endpoint (v4, which ECS gives every Fargate container), locally `local-task:<pid>`.
 */
export async function taskIdentity(env: Record<string, string | undefined> = process.env): Promise<string> {
  const uri = env.ECS_CONTAINER_METADATA_URI_V4;
  if (!uri) return localTaskId(process.pid);
  const res = await fetch(`${uri}/task`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`ECS task metadata answered HTTP ${res.status}`);
  return fargateTaskId(taskMetadata.parse(await res.json()).TaskARN);
}
