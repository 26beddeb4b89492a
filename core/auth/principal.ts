import type { Scope } from "./scopes.ts";

/** Who is calling: resolved once per request by the auth middleware. */
export interface Principal {
  auth_source: "api_key" | "clerk_session";
  organization_id: string;
  /** Set for a project-scoped key: the only project it may act on. */
  project_id: string | null;
  scopes: Scope[];
  user_id: string | null;
  is_admin: boolean;
  /** The API key's id, for logs. */
  key_id: string | null;
}
