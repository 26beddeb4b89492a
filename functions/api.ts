import { handle } from "hono/aws-lambda";
import { createApp } from "../core/api/app.ts";
import { loadConfig } from "../core/config.ts";
import { createDeps } from "../core/deps.ts";

/** API Gateway (HTTP API) -> the Hono app. Configuration is parsed once, at cold start. */
const config = loadConfig();
export const handler = handle(createApp({ deps: createDeps(config), clerk: config.clerk }));
