import { handle } from "hono/aws-lambda";
import { createApp } from "../core/api/app.ts";
import { loadConfig } from "../core/config.ts";
import { createDeps } from "../core/deps.ts";

/** API Gateway (HTTP API) -> the Hono app. Configuration is parsed once, at cold start. */
const config = loadConfig();
// The API function is not linked to the bucket (it never touches S3), so its health omits S3.
export const handler = handle(createApp({ deps: createDeps(config, {}, "api"), clerk: config.clerk, healthChecks: { s3: undefined } }));
