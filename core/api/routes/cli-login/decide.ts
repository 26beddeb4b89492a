import { createRoute } from "@hono/zod-openapi";
import { z } from "../../../zod.ts";
import { actorOf } from "../../../audit/audit.ts";
import { approveCliLogin, denyCliLogin, describeCliLogin, wireState } from "../../../auth/cli-login.ts";
import { callerAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { security } from "../../../contract/shared.ts";
import { CliLoginApproval, CliLoginParams } from "../../../contract/cli-login.ts";

const Decision = z.object({ session_id: z.string(), state: z.enum(["pending", "completed", "denied", "expired"]) }).openapi("CliLoginDecision");

export const describeCliLoginRoute = createRoute({
  method: "get",
  path: "/v1/cli/login/sessions/{sessionID}/approval",
  tags: ["CLI login"],
  summary: "A device login as the signed-in person approving it sees it: the device, the scopes asked and those it would get",
  security,
  middleware: [callerAccess()] as const,
  request: { params: CliLoginParams },
  responses: {
    200: { description: "The login", content: { "application/json": { schema: z.object({ login: CliLoginApproval }) } } },
    ...errorResponses(401, 404),
  },
});

const decideRoute = (verb: "approve" | "deny") =>
  createRoute({
    method: "post",
    path: `/v1/cli/login/sessions/{sessionID}/${verb}`,
    tags: ["CLI login"],
    summary:
      verb === "approve"
        ? "Approve a device login: the CLI's next poll gets a new key of the caller's organization, with the asked scopes the caller holds"
        : "Deny a device login: the CLI's next poll says denied",
    security,
    middleware: [callerAccess()] as const,
    request: { params: CliLoginParams },
    responses: {
      200: { description: "The decision", content: { "application/json": { schema: z.object({ login: Decision }) } } },
      ...errorResponses(401, 403, 404, 409),
    },
  });
export const approveCliLoginRoute = decideRoute("approve");
export const denyCliLoginRoute = decideRoute("deny");

export function registerDecideCliLogin(app: App, r: RouteDeps) {
  app.openapi(describeCliLoginRoute, async (c) => {
    return c.json({ login: await describeCliLogin(r.deps, c.req.valid("param").sessionID, c.var.principal) }, 200);
  });
  app.openapi(approveCliLoginRoute, async (c) => {
    const session = await approveCliLogin(r.deps, c.req.valid("param").sessionID, c.var.principal, actorOf(c.var.principal));
    c.var.log.info("cli login approved", { session_id: session.id });
    return c.json({ login: { session_id: session.id, state: wireState(session, r.deps.now()) } }, 200);
  });
  app.openapi(denyCliLoginRoute, async (c) => {
    const session = await denyCliLogin(r.deps, c.req.valid("param").sessionID, c.var.principal, actorOf(c.var.principal));
    c.var.log.info("cli login denied", { session_id: session.id });
    return c.json({ login: { session_id: session.id, state: wireState(session, r.deps.now()) } }, 200);
  });
}
