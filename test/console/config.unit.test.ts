import { describe, expect, it } from "vitest";
import { loadConsoleOptions } from "../../core/console/config.ts";

/**
 * The console function's one setting (functions/console.ts): whether to offer Clerk sign-in,
 * read from the same SST secrets as the API's configuration, or from plain variables locally.
 */
describe("loadConsoleOptions", () => {
  it.each([
    ["no Clerk setting at all", {}, false],
    ["the SST secrets at their empty placeholders (Clerk off)", { SST_RESOURCE_ClerkJwksUrl: '{"value":""}', SST_RESOURCE_ClerkIssuer: '{"value":""}' }, false],
    [
      "the JWKS URL secret set",
      { SST_RESOURCE_ClerkJwksUrl: '{"value":"https://clerk.example.com/.well-known/jwks.json"}', SST_RESOURCE_ClerkIssuer: '{"value":""}' },
      true,
    ],
    ["the issuer secret set", { SST_RESOURCE_ClerkIssuer: '{"value":"https://clerk.example.com"}' }, true],
    ["a plain CLERK_ISSUER (local stack)", { CLERK_ISSUER: "https://clerk.example.com" }, true],
    ["an empty plain variable", { CLERK_JWKS_URL: "" }, false],
  ])("%s -> clerk %s", (_name, env, clerk) => {
    expect(loadConsoleOptions(env)).toEqual({ clerk });
  });

  it("names the setting that is not a secret link's JSON", () => {
    expect(() => loadConsoleOptions({ SST_RESOURCE_ClerkIssuer: "https://clerk.example.com" })).toThrow("invalid setting SST_RESOURCE_ClerkIssuer: not JSON");
    expect(() => loadConsoleOptions({ SST_RESOURCE_ClerkJwksUrl: '{"value":42}' })).toThrow(
      'invalid setting ClerkJwksUrl: expected a secret link {"value": "..."}',
    );
  });
});
