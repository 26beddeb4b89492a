import { createRoute } from "@hono/zod-openapi";
import { createApproval } from "../../../approvals/approvals.ts";
import { actorOf } from "../../../audit/audit.ts";
import { AppError } from "../../../errors.ts";
import { projectAccess } from "../../auth.ts";
import type { App, RouteDeps } from "../../context.ts";
import { errorResponses } from "../../errors.ts";
import { ProjectParams, security } from "../../../contract/shared.ts";
import { CreateApprovalRequest, CreateApprovalResponse } from "../../../contract/approvals.ts";

export const createApprovalRoute = createRoute({
  method: "post",
  path: "/v1/projects/{projectID}/approvals",
  tags: ["Approvals"],
  summary: "Approve one destructive operation on the project (organization admins' sessions only)",
  description:
    "Mints a single-use approval token for `project.restore_overwrite` or `project.promote_preview`, valid about 10 minutes. " +
    "Only an organization admin's signed-in session may approve: an API key gets a 403, so an automation can never approve its own overwrite. " +
    "Operators can also mint one with `capydb-admin approval create`.",
  security,
  // The project preamble every project route shares; the real gate (an admin's session) is the handler's.
  middleware: [projectAccess("projects:read")] as const,
  request: { params: ProjectParams, body: { required: true, content: { "application/json": { schema: CreateApprovalRequest } } } },
  responses: {
    201: { description: "The approval, with its token", content: { "application/json": { schema: CreateApprovalResponse } } },
    ...errorResponses(400, 401, 403, 404, 413, 415, 503),
  },
});

export function registerCreateApproval(app: App, r: RouteDeps) {
  app.openapi(createApprovalRoute, async (c) => {
    const p = c.var.principal;
    const { action } = c.req.valid("json");
    if (p.auth_source !== "clerk_session") {
      throw new AppError(
        "forbidden",
        `an organization admin must approve ${action}: API keys cannot mint approvals. Ask an admin to approve it while signed in (POST this with their session), or an operator to run \`capydb-admin approval create\``,
      );
    }
    if (!p.is_admin) {
      throw new AppError("forbidden", `only an organization admin can approve ${action}: this session's organization role is not admin`);
    }
    const project = c.var.project;
    const approval = await createApproval(r.deps, { project, action, actor: actorOf(p) });
    c.var.log.info("approval created", { project_id: project.id, approval_id: approval.id, action });
    return c.json({ approval }, 201);
  });
}
