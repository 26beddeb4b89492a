import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from "jose";
import type { Config } from "../config.ts";
import type { Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { getOrganizationByClerkId } from "../orgs/orgs.ts";
import type { Principal } from "./principal.ts";
import { allScopes, type Scope } from "./scopes.ts";

/** What an organization member may do with a session: backups and jobs, not key management. */
export const memberScopes: Scope[] = ["backups:read", "backups:write", "jobs:read", "projects:read", "organizations:read"];

type ClerkClaims = JWTPayload & {
  azp?: string;
  org_id?: string;
  org_role?: string;
  o?: { id?: string; rol?: string };
};

/**
 * Verifies Clerk session tokens: RS256 only, against the configured JWKS (cached by jose and
 * refetched for an unknown `kid`, at most once per cooldown), issuer, authorized parties (`azp`),
 * and `exp`/`nbf` with a small clock skew. The token's active organization (v1 `org_id`/`org_role`
 * or v2 `o.id`/`o.rol`) decides which CapyDB organization the caller acts in.
 */
export class ClerkVerifier {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  private readonly orgCache = new Map<string, { id: string | undefined; until: number }>();

  constructor(
    private readonly config: NonNullable<Config["clerk"]>,
    private readonly deps: Pick<Deps, "ddb" | "table" | "now">,
    private readonly clockToleranceSeconds = 5,
  ) {
    this.jwks = createRemoteJWKSet(new URL(config.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 600_000, timeoutDuration: 5_000 });
  }

  async verify(token: string): Promise<Principal> {
    let claims: ClerkClaims;
    try {
      const { payload } = await jwtVerify<ClerkClaims>(token, this.jwks, {
        issuer: this.config.issuer,
        algorithms: ["RS256"],
        clockTolerance: this.clockToleranceSeconds,
        currentDate: this.deps.now(),
      });
      claims = payload;
    } catch (err) {
      throw new AppError("unauthorized", `the session token is not valid (${reason(err)})`);
    }
    // Clerk's guidance: with authorized parties configured, a token must name one (a token without
    // `azp` was minted for no browser origin, e.g. by a backend API, and is not a session of this app).
    if (this.config.authorizedParties.length) {
      if (typeof claims.azp !== "string" || !claims.azp)
        throw new AppError("unauthorized", "the session token is not valid (no azp claim: an authorized party is required)");
      if (!this.config.authorizedParties.includes(claims.azp)) throw new AppError("unauthorized", "the session token is not valid (unauthorized party)");
    }
    const clerkOrgId = claims.o?.id ?? claims.org_id;
    const role = claims.o?.rol ?? claims.org_role ?? "";
    if (!clerkOrgId) throw new AppError("forbidden", "the session has no active organization: select an organization first");
    const organizationId = await this.organizationFor(clerkOrgId);
    if (!organizationId) throw new AppError("forbidden", "the session's active organization is not a CapyDB organization");
    const isAdmin = role === "admin" || role === "org:admin";
    return {
      auth_source: "clerk_session",
      organization_id: organizationId,
      project_id: null,
      scopes: isAdmin ? [...allScopes] : [...memberScopes],
      user_id: typeof claims.sub === "string" ? claims.sub : null,
      is_admin: isAdmin,
      key_id: null,
    };
  }

  private async organizationFor(clerkOrgId: string): Promise<string | undefined> {
    const now = this.deps.now().getTime();
    const cached = this.orgCache.get(clerkOrgId);
    if (cached && cached.until > now) return cached.id;
    const org = await getOrganizationByClerkId(this.deps, clerkOrgId);
    if (this.orgCache.size > 10_000) this.orgCache.clear();
    this.orgCache.set(clerkOrgId, { id: org?.id, until: now + 60_000 });
    return org?.id;
  }
}

function reason(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "expired";
  if (err instanceof errors.JWTClaimValidationFailed) return `${err.claim} claim rejected`;
  if (err instanceof errors.JOSEAlgNotAllowed) return "algorithm not allowed";
  if (err instanceof errors.JWKSNoMatchingKey) return "unknown signing key";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "bad signature";
  if (err instanceof errors.JWKSTimeout) return "signing keys unavailable";
  return "malformed";
}

/** A JWT has three base64url parts. */
export const looksLikeJwt = (token: string) => /^[\w-]+\.[\w-]+\.[\w-]*$/.test(token);
