import { z } from "../../../zod.ts";
import { scopeSchema } from "../../../auth/scopes.ts";

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

export const Organization = z
  .object({ id: z.string(), name: z.string(), slug: z.string() })
  .openapi("Organization", { description: "The caller's organization (the slug is derived from the name)." });

export const MeResponse = z.object({ principal: Principal, organization: Organization });
