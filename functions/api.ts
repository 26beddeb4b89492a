import { handle } from "hono/aws-lambda";
import { createApp } from "../core/api/app.ts";
import { loadConfig } from "../core/config.ts";
import { createDepsWithoutS3 } from "../core/deps.ts";

/** API Gateway (HTTP API) -> the Hono app. Configuration is parsed once, at cold start. */
const config = loadConfig();
// No S3 client: the API only signs download URLs (deps.presignGet), and its health covers what it
// uses (DynamoDB, SQS). `/console` is another function's (functions/console.ts).
export const handler = handle(createApp({ deps: createDepsWithoutS3(config, {}, "api"), clerk: config.clerk }));
