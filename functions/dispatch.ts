import { loadConfig } from "../core/config.ts";
import { createDeps } from "../core/deps.ts";
import { createDispatchHandler } from "../core/dispatch/handler.ts";

const run = createDispatchHandler(createDeps(loadConfig(), {}, "dispatch"));

/** EventBridge minute tick -> due schedules, retention, reaper. */
export const handler = async (): Promise<void> => {
  await run();
};
