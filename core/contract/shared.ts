import { z } from "../zod.ts";

/** Wire pieces every resource's schemas share: path parameters, paging, timestamps, security. */
export const timestamp = { type: "string", format: "date-time", example: "2026-11-26T02:15:00Z" } as const;
// Timestamps as fresh field schemas, so the OpenAPI document shows them as date-times with an example.
export const at = () => z.string().openapi(timestamp);
// Without `type`: the schema's own (string or null) stays; a `type: "string"` here would document
// a nullable timestamp as never null.
export const atOrNull = () => z.string().nullable().openapi({ format: "date-time", example: timestamp.example });

export const ProjectParams = z.object({
  projectID: z
    .string()
    .min(1)
    .openapi({ param: { name: "projectID", in: "path" }, description: "Project id." }),
});

export const OrgParams = z.object({
  orgID: z
    .string()
    .min(1)
    .openapi({ param: { name: "orgID", in: "path" }, description: "Organization id." }),
});

/**
 * A list's `limit` query parameter: at least 1; a value above the list's maximum is clamped to it
 * (CapyDB's published clients ask for more than some lists serve), not refused.
 */
export const clampedLimit = (max: number, byDefault: number) =>
  z.coerce
    .number()
    .int()
    .min(1)
    .default(byDefault)
    .transform((n) => Math.min(n, max))
    .openapi({ description: `Page size (default ${byDefault}); values above ${max} are treated as ${max}.`, type: "integer", minimum: 1 });

/** A list's paging query: `limit` (clamped to the list's maximum) and the previous page's `cursor`. */
export const listQuery = (max: number, byDefault: number) =>
  z.object({
    limit: clampedLimit(max, byDefault),
    cursor: z.string().max(2000).optional().openapi({ description: "The `x-next-cursor` header of the previous page." }),
  });

/**
 * The query of a list returned whole (projects, API keys, webhook endpoints, restore points: short
 * by nature, and an organization's webhook endpoints are at most 20): `limit` and `cursor` are
 * refused with a 400 rather than silently ignored, so a client that pages finds out at once.
 */
export const unpagedQuery = (what: string) => {
  const refused = (name: string) =>
    z
      .string()
      .optional()
      .refine((v) => v === undefined, { message: `this list is not paged (it returns ${what} in one answer): leave out ${name}` })
      .openapi({ description: `Not accepted (400): this list returns ${what} in one answer.` });
  return z.object({ limit: refused("limit"), cursor: refused("cursor") });
};

export const security: Record<string, string[]>[] = [{ bearerAuth: [] }, { apiKeyAuth: [] }];
