import type { Scope } from "../contract/scopes.ts";

/** The scope list is part of the wire contract (core/contract/scopes.ts); the rules about scopes are here. */
export { allScopes, scopeSchema, type Scope } from "../contract/scopes.ts";

/** Scopes that manage the organization itself: never granted to a project-scoped key. */
export const orgManagementScopes: readonly Scope[] = ["organizations:read", "organizations:write", "api_keys:read", "api_keys:write", "projects:write"];
