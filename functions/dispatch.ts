import { loadConfig } from "../core/config.ts";
import { createDeps } from "../core/deps.ts";
import { createDispatchHandler } from "../core/dispatch/handler.ts";

const config = loadConfig();
const run = createDispatchHandler(createDeps(config, {}, "dispatch"), { baseBackupAt: config.baseBackupAt });

/** EventBridge minute tick -> due schedules, retention, reaper. */
export const handler = async (): Promise<void> => {
  await run();
};
