import { z } from "../zod.ts";

/** CapyDB's scope list. */
export const allScopes = [
  "backups:read",
  "backups:write",
  "jobs:read",
  "projects:read",
  "projects:write",
  "credentials:read",
  "organizations:read",
  "organizations:write",
  "api_keys:read",
  "api_keys:write",
] as const;
export const scopeSchema = z.enum(allScopes);
export type Scope = z.infer<typeof scopeSchema>;
