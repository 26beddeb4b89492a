import { existsSync, readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";

/**
 * TLS to customers' clusters. By default every connection is `verify-full`: TLS, a certificate
 * chain to a trusted CA, and the host name in the certificate, for node-postgres and for libpq's
 * tools alike. Plaintext or unverified TLS only for a cluster registered with the explicit opt-out
 * (`insecure_tls`, visible on the cluster record; the local stack's cluster has it), and then in
 * the `sslmode` its URL names (libpq's default `prefer` when it names none).
 *
 * Trusted CAs: the file named by CAPYDB_PG_CA_FILE (a PEM bundle: a private CA, or Amazon RDS's
 * global bundle, which the public store does not hold), else the system's bundle. libpq gets it as
 * a path (`sslrootcert=<file>`), which every libpq version reads; `sslrootcert=system` is libpq 16+
 * and is used only where no bundle file is found (the PostgreSQL 15 tools on this machine would
 * refuse it). node-postgres gets the same file's certificates, so both clients trust the same CAs.
 */
export interface TlsSettings {
  /** As registered: the URL's `sslmode`, or null. */
  sslmode: string | null;
  /** The cluster's explicit opt-out of verified TLS. */
  insecureTls?: boolean;
}

/** Where Debian/Ubuntu, Amazon Linux 2023 (Lambda's nodejs24.x, the task image) and Alpine keep the system bundle. */
export const systemCaBundles = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/** The sslmodes libpq knows; anything weaker than verify-full needs the opt-out. */
const sslmodes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
export type Sslmode = (typeof sslmodes)[number];

/** Why a registration's sslmode is refused without the opt-out, or undefined when it is fine. */
export function sslmodeProblem(sslmode: string | null, insecureTls: boolean): string | undefined {
  if (sslmode !== null && !(sslmodes as readonly string[]).includes(sslmode)) {
    return `sslmode=${sslmode} is not one of ${sslmodes.join(", ")}`;
  }
  if (insecureTls || sslmode === null || sslmode === "verify-full") return undefined;
  return (
    `sslmode=${sslmode} does not verify the server's certificate and host name: remove it (verify-full is the default), ` +
    `or register the cluster with the explicit opt-out insecure_tls (capydb-admin clusters create --insecure-tls)`
  );
}

/** The sslmode a connection uses: verify-full unless the cluster opted out. */
export function effectiveSslmode(conn: TlsSettings): Sslmode {
  if (!conn.insecureTls) return "verify-full";
  const mode = conn.sslmode ?? "prefer";
  return (sslmodes as readonly string[]).includes(mode) ? (mode as Sslmode) : "verify-full";
}

/** The CA bundle's path: CAPYDB_PG_CA_FILE, else the first system bundle present; undefined when none is. */
export function caFile(env: Record<string, string | undefined> = process.env): string | undefined {
  const configured = env.CAPYDB_PG_CA_FILE;
  if (configured) {
    if (!existsSync(configured)) throw new Error(`invalid setting CAPYDB_PG_CA_FILE: ${configured} does not exist`);
    return configured;
  }
  return systemCaBundles.find((f) => existsSync(f));
}

/** node-postgres's `ssl` option. node-postgres has no `prefer`/`allow`: those connect without TLS. */
export function nodeTls(conn: TlsSettings, env: Record<string, string | undefined> = process.env): false | ConnectionOptions {
  const mode = effectiveSslmode(conn);
  if (mode === "require") return { rejectUnauthorized: false };
  if (mode === "verify-ca" || mode === "verify-full") {
    const file = caFile(env);
    return {
      rejectUnauthorized: true,
      // No file: Node's own store (Mozilla's list), the closest to a system store it has.
      ...(file ? { ca: readFileSync(file, "utf8") } : {}),
      // verify-ca: the chain, not the name (libpq's meaning).
      ...(mode === "verify-ca" ? { checkServerIdentity: () => undefined } : {}),
    };
  }
  return false;
}

/** libpq's variables for the tools: PGSSLMODE, and for the verifying modes the CAs to trust. */
export function libpqTls(conn: TlsSettings, env: Record<string, string | undefined> = process.env): Record<string, string> {
  const mode = effectiveSslmode(conn);
  if (mode !== "verify-ca" && mode !== "verify-full") return { PGSSLMODE: mode };
  return { PGSSLMODE: mode, PGSSLROOTCERT: caFile(env) ?? "system" };
}
