import { z } from "../zod.ts";
import { atOrNull } from "./shared.ts";

/** The Organization as the API shows it (SPEC section 5, `GET /v1/organizations/{orgID}` and `/v1/me`): exactly these fields. */
export const organizationSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** Derived from the name (names are unique). */
  slug: z.string(),
  billing_plan: z.string(),
  billing_status: z.string(),
  billing_provider: z.string(),
  clerk_organization_id: z.string().nullable(),
  clerk_organization_slug: z.string().nullable(),
  suspended_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

const timestamp = { type: "string", format: "date-time", example: "2026-11-26T02:15:00Z" } as const;

export const Organization = organizationSchema
  .extend({
    slug: z.string().openapi({ description: "Derived from the name (names are unique)." }),
    billing_plan: z.string().openapi({ description: "Informational: `standard` unless an operator recorded another plan." }),
    billing_status: z.string().openapi({ description: "Informational: `active` unless an operator recorded otherwise." }),
    billing_provider: z.string().openapi({ description: "Informational: `manual` (billed by the operators) unless recorded otherwise." }),
    suspended_at: atOrNull(),
    created_at: z.string().openapi(timestamp),
    updated_at: z.string().openapi(timestamp),
  })
  .openapi("Organization", { description: "An organization: the caller's own (GET /v1/me, GET /v1/organizations/{orgID})." });

export const GetOrganizationResponse = z.object({ organization: Organization });
