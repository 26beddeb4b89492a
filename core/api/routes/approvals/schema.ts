import { z } from "../../../zod.ts";
import { approvalActionSchema, approvalActions, approvalSchema } from "../../../approvals/approvals.ts";

export const Approval = approvalSchema
  .extend({
    action: approvalActionSchema,
    token: z.string().openapi({ description: "ap_...: shown in this response only; single use, bound to the project and the action." }),
    expires_at: z.string().openapi({ type: "string", format: "date-time", description: "About 10 minutes from now." }),
  })
  .openapi("Approval");

export const CreateApprovalRequest = z
  .object({ action: approvalActionSchema.meta({ description: `The operation approved: ${approvalActions.join(" or ")}.` }) })
  .openapi("CreateApprovalRequest");

export const CreateApprovalResponse = z.object({ approval: Approval });
