import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * `X-CapyDB-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, keyed by the
 * endpoint's secret (the whole `whsec_...` string, as UTF-8). While a rotated secret is in its
 * overlap, the header carries one `v1=` per secret, newest first, so a receiver holding either
 * secret verifies the request. Pure functions: the CLI's `webhooks verify` and receivers use them.
 */

export const SECRET_PREFIX = "whsec_";

/** A new endpoint secret: `whsec_` + 32 random bytes, base64url. */
export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString("base64url");
}

export function signPayload(secret: string, timestamp: number, body: string): string {
  return createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}

export function signatureHeader(secrets: readonly string[], timestamp: number, body: string): string {
  return [`t=${timestamp}`, ...secrets.map((s) => `v1=${signPayload(s, timestamp, body)}`)].join(",");
}

export type VerifyResult = { ok: true; timestamp: number } | { ok: false; reason: string };

/**
 * Checks a signature header against the raw body: one of its `v1` values must be this secret's
 * HMAC, and its timestamp within `toleranceSeconds` of now (a replayed old request is refused).
 */
export function verifySignature(opts: { secret: string; header: string; body: string; toleranceSeconds?: number; now?: number }): VerifyResult {
  const parts = opts.header.split(",").map((p) => p.trim());
  const t = parts.find((p) => p.startsWith("t="))?.slice(2);
  const candidates = parts.filter((p) => p.startsWith("v1=")).map((p) => p.slice(3));
  if (!t || !/^\d+$/.test(t)) return { ok: false, reason: "the header has no t=<unix seconds>" };
  if (!candidates.length) return { ok: false, reason: "the header has no v1=<signature>" };
  const timestamp = Number(t);
  const tolerance = opts.toleranceSeconds ?? 300;
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  if (Math.abs(now - timestamp) > tolerance)
    return { ok: false, reason: `the timestamp is more than ${tolerance} s away from now (a replay, or a wrong clock)` };
  const expected = Buffer.from(signPayload(opts.secret, timestamp, opts.body), "hex");
  const match = candidates.some((c) => {
    if (!/^[0-9a-f]{64}$/i.test(c)) return false;
    return timingSafeEqual(Buffer.from(c, "hex"), expected);
  });
  return match ? { ok: true, timestamp } : { ok: false, reason: "no v1 signature matches this secret and body" };
}
