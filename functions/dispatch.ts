import { loadConfig } from "../core/config.ts";
import { createDeps } from "../core/deps.ts";
import { createDispatchHandler } from "../core/dispatch/handler.ts";
import { dispatchMetrics } from "../core/dispatch/metrics.ts";

const config = loadConfig();
// The metrics the alarms read (StaleProjects, DispatchPhaseFailures, the WAL archive's): EMF lines in this function's log.
const run = createDispatchHandler(createDeps(config, {}, "dispatch"), { baseBackupAt: config.baseBackupAt }, dispatchMetrics());

/** EventBridge minute tick -> due schedules, retention, reaper; then its metrics. */
export const handler = async (): Promise<void> => {
  await run();
};
