import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { z } from "../zod.ts";
import type { Deps } from "../deps.ts";

/** The jobs queue's message: only a job id; the job record is the source of truth. */
export const jobMessageSchema = z.object({ job_id: z.string().regex(/^job_[0-9a-z]{26}$/) }).strict();
export type JobMessage = z.infer<typeof jobMessageSchema>;

/**
 * Sends one message per job id, in batches of ten (SQS's limit). Throws if any message could not
 * be sent; callers that have already committed the job rely on the reaper to enqueue it again.
 */
export async function enqueueJobs(deps: Pick<Deps, "sqs" | "queueUrl">, jobIds: readonly string[], delaySeconds = 0): Promise<void> {
  const delay = Math.max(0, Math.min(900, Math.round(delaySeconds)));
  for (let i = 0; i < jobIds.length; i += 10) {
    const chunk = jobIds.slice(i, i + 10);
    const res = await deps.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: deps.queueUrl,
        Entries: chunk.map((id, n) => ({ Id: String(n), MessageBody: JSON.stringify({ job_id: id } satisfies JobMessage), DelaySeconds: delay })),
      }),
    );
    if (res.Failed?.length) {
      throw new Error(`could not enqueue ${res.Failed.length} job message(s): ${res.Failed[0]?.Code ?? "unknown"}`);
    }
  }
}

/**
 * Enqueues a job whose record is already committed. A failure is logged, not thrown: the request
 * succeeded, and the reaper enqueues committed jobs it finds without a message.
 */
export async function enqueueCommitted(deps: Pick<Deps, "sqs" | "queueUrl" | "log">, jobId: string): Promise<void> {
  try {
    await enqueueJobs(deps, [jobId]);
  } catch (err) {
    deps.log.warn("job committed but not enqueued; the reaper will enqueue it", { job_id: jobId, error: String(err) });
  }
}
