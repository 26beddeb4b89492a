import { functionArgs } from "./resources.ts";
import { dispatchSchedule, functions } from "./settings.ts";
import { vpc } from "./network.ts";
import { bucket } from "./storage.ts";

/** The minute tick (EventBridge Scheduler): starts due scheduled backups, sweeps retention. */
export const dispatcher = new sst.aws.CronV2("Dispatch", {
  ...dispatchSchedule,
  function: functionArgs(functions.dispatch, {
    environment: { CAPYDB_BUCKET: bucket.name },
    vpc,
  }),
});
