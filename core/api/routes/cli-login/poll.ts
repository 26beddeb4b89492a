import { createRoute } from "@hono/zod-openapi";
import { pollCliLogin } from "../../../auth/cli-login.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { CliLoginParams, CliLoginPoll, PollQuery } from "../../../contract/cli-login.ts";

export const pollCliLoginRoute = createRoute({
  method: "get",
  path: "/v1/cli/login/sessions/{sessionID}",
  tags: ["CLI login"],
  summary: "Poll a device login with its poll token: pending, then completed (with the new key, once), denied or expired",
  request: { params: CliLoginParams, query: PollQuery },
  responses: {
    200: { description: "The session's state", content: { "application/json": { schema: CliLoginPoll } } },
    ...errorResponses(401, 404, 429, 503),
  },
});

export function registerPollCliLogin(app: App, r: RouteDeps) {
  app.openapi(pollCliLoginRoute, async (c) => {
    const token = c.req.header("x-capydb-poll-token") ?? c.req.valid("query").poll_token;
    const poll = await pollCliLogin(r.deps, c.req.valid("param").sessionID, token);
    if (poll.plaintext_api_key) c.var.log.info("cli login completed", { session_id: poll.session_id });
    c.header("Cache-Control", "no-store");
    return c.json(poll, 200);
  });
}
