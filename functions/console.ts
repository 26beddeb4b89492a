import { handle } from "hono/aws-lambda";
import { createConsoleApp } from "../core/console/app.ts";
import { loadConsoleOptions } from "../core/console/config.ts";

/** API Gateway (HTTP API) routes `/console` and `/console/{proxy+}` here (infra/api.ts). */
export const handler = handle(createConsoleApp(loadConsoleOptions()));
