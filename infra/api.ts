import { functionArgs } from "./resources.ts";
import { apiThrottle, functions } from "./settings.ts";
import { bucket } from "./storage.ts";

/**
 * The public API: an HTTP API (API Gateway v2) whose `$default` route sends every request to the
 * Hono app, which does its own routing. Chosen over a function URL for the custom domain,
 * stage throttling and access logs a public API wants; the price is $1 per million requests.
 * `/console` and everything under it go to the console's own function (same origin, so the
 * pages' `connect-src 'self'` reaches the API), which keeps the pages out of the API's bundle.
 */
export const api = new sst.aws.ApiGatewayV2("Api", {
  // Beyond this API Gateway answers 429 itself: a flood costs no Lambda time and cannot take the
  // account's concurrency from the worker (the API's own share is reserved in settings.ts).
  transform: {
    stage: {
      defaultRouteSettings: { throttlingRateLimit: apiThrottle.rateLimit, throttlingBurstLimit: apiThrottle.burstLimit },
    },
  },
});

export const consoleFunction = new sst.aws.Function("Console", functionArgs(functions.console));
api.route("ANY /console", consoleFunction.arn);
api.route("ANY /console/{proxy+}", consoleFunction.arn);

export const apiRoute = api.route(
  "$default",
  functionArgs(functions.api, {
    // core/config.ts requires a bucket name at every entry point. The API only signs download URLs
    // (s3:GetObject, its grant in settings.ts): it gets the name, not a link.
    environment: { CAPYDB_BUCKET: bucket.name },
  }),
);
