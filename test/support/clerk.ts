import { createServer, type Server } from "node:http";
import { createHmac, randomUUID } from "node:crypto";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from "jose";
import { freePort } from "../../local/wait.ts";

export const ISSUER = "https://clerk.test.capydb.local";
export const PARTY = "https://dashboard.capydb.local";

/** A Clerk stand-in: an RSA key pair generated here and its JWKS served over HTTP on loopback. */
export async function startFakeClerk() {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = randomUUID();
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  let fetches = 0;
  const port = await freePort();
  const server: Server = createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  const publicPem = await exportSPKI(publicKey);

  const sign = (
    claims: JWTPayload & Record<string, unknown>,
    opts: { kid?: string; exp?: number | string; nbf?: number; key?: Parameters<SignJWT["sign"]>[0] } = {},
  ) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ azp: PARTY, ...claims })
      .setProtectedHeader({ alg: "RS256", kid: opts.kid ?? kid, typ: "JWT" })
      .setIssuer((claims.iss as string) ?? ISSUER)
      .setSubject((claims.sub as string) ?? "user_2abc")
      .setIssuedAt(now)
      .setNotBefore(opts.nbf ?? now - 1)
      .setExpirationTime(opts.exp ?? now + 60)
      .sign(opts.key ?? privateKey);
  };
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return {
    config: { jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`, issuer: ISSUER, authorizedParties: [PARTY] },
    sign,
    member: (clerkOrg: string) => sign({ org_id: clerkOrg, org_role: "org:member" }),
    admin: (clerkOrg: string) => sign({ o: { id: clerkOrg, rol: "admin" }, v: 2 }),
    /** `alg: none`: an unsigned token. */
    unsigned: (clerkOrg: string) =>
      `${b64({ alg: "none", typ: "JWT" })}.${b64({ iss: ISSUER, sub: "u", org_id: clerkOrg, exp: Math.floor(Date.now() / 1000) + 60 })}.`,
    /** HS256 "signed" with the public key as the HMAC secret: the classic algorithm-confusion attack. */
    hs256WithPublicKey: (clerkOrg: string) => {
      const head = `${b64({ alg: "HS256", typ: "JWT", kid })}.${b64({ iss: ISSUER, sub: "u", azp: PARTY, org_id: clerkOrg, org_role: "org:admin", exp: Math.floor(Date.now() / 1000) + 60 })}`;
      return `${head}.${createHmac("sha256", publicPem).update(head).digest("base64url")}`;
    },
    fetches: () => fetches,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
