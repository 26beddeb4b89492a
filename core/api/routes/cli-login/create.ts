import { createRoute } from "@hono/zod-openapi";
import type { z } from "../../../zod.ts";
import { createCliLogin } from "../../../auth/cli-login.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { CliLoginSession, CreateCliLoginRequest } from "../../../contract/cli-login.ts";

export const createCliLoginRoute = createRoute({
  method: "post",
  path: "/v1/cli/login/sessions",
  tags: ["CLI login"],
  summary: "Start a device login (no credential): a person approves it in the console, the CLI polls for its key",
  request: { body: { required: true, content: { "application/json": { schema: CreateCliLoginRequest } } } },
  responses: {
    201: { description: "The session, its poll token (shown once) and the page to approve it", content: { "application/json": { schema: CliLoginSession } } },
    ...errorResponses(400, 413, 415, 503),
  },
});

/** The console's approval page for a session, on the origin the CLI called (the console is served beside the API). */
export const verificationUrl = (requestUrl: string, sessionId: string) => `${new URL(requestUrl).origin}/console/cli-login/${sessionId}`;

export function registerCreateCliLogin(app: App, r: RouteDeps) {
  app.openapi(createCliLoginRoute, async (c) => {
    const { session, pollToken } = await createCliLogin(r.deps, c.req.valid("json"));
    c.var.log.info("cli login started", { session_id: session.id, source: session.source });
    const answer: z.infer<typeof CliLoginSession> = {
      session_id: session.id,
      poll_token: pollToken,
      state: "pending",
      expires_at: session.expires_at,
      verification_url: verificationUrl(c.req.url, session.id),
    };
    c.header("Cache-Control", "no-store");
    return c.json(answer, 201);
  });
}
