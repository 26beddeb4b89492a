import { z } from "../zod.ts";

export const approvalActions = ["project.restore_overwrite", "project.promote_preview"] as const;
export type ApprovalAction = (typeof approvalActions)[number];
export const approvalActionSchema = z.enum(approvalActions);

/** The Approval as the API shows it (SPEC section 5). `token` appears in the mint response only. */
export const approvalSchema = z.object({
  id: z.string(),
  action: approvalActionSchema,
  token: z.string(),
  expires_at: z.string(),
});
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
