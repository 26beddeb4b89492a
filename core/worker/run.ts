import type { Deps } from "../deps.ts";

export interface MessageContext {
  receiptHandle: string;
  receiveCount: number;
}

/** Runs one job. (The backup worker lands with its own issue.) */
export async function runJob(_deps: Deps, jobId: string, _msg: MessageContext): Promise<void> {
  throw new Error(`job ${jobId}: the backup worker is not implemented yet`);
}
