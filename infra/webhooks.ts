import { functionArgs } from "./resources.ts";
import { deliverySubscription, functions } from "./settings.ts";
import { bucket, deliveries, jobs } from "./storage.ts";

/**
 * The webhook delivery function: each message of the deliveries queue is one signed POST attempt.
 * The outbox relay runs in the dispatcher's minute tick (infra/dispatch.ts).
 */
export const deliver = deliveries.subscribe(
  functionArgs(functions.deliver, {
    // core/config.ts requires these names at every entry point; the function uses neither.
    environment: { CAPYDB_BUCKET: bucket.name, CAPYDB_QUEUE_URL: jobs.url },
  }),
  deliverySubscription,
);
