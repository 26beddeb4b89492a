import { z } from "../zod.ts";
import { Organization } from "./organizations.ts";
import { scopeSchema } from "./scopes.ts";

export const Principal = z
  .object({
    auth_source: z.enum(["api_key", "clerk_session"]),
    organization_id: z.string(),
    project_id: z.string().nullable(),
    scopes: z.array(scopeSchema),
    user_id: z.string().nullable(),
    is_admin: z.boolean(),
  })
  .openapi("Principal");

export const MeResponse = z.object({ principal: Principal, organization: Organization });
