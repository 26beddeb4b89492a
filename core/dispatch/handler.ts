import type { Deps } from "../deps.ts";

/** One dispatcher tick. (Scheduling, retention and the reaper land with their own issue.) */
export function createDispatchHandler(deps: Deps) {
  return async (): Promise<void> => {
    deps.log.debug("dispatcher tick");
  };
}
