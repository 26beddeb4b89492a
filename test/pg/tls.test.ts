import { execFileSync } from "node:child_process";
import { chownSync, mkdtempSync, chmodSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { libpqTls, nodeTls, sslmodeProblem } from "../../core/pg/tls.ts";
import { closeQuietly, connect, toolEnv, type ClusterConnection } from "../../core/pg/pgconn.ts";
import { pickPgTools } from "../../core/pg/pgtools.ts";
import { freePort } from "../../local/wait.ts";
import { startPostgres, type PostgresServer } from "../../local/postgres.ts";
import { runTool } from "../worker/support.ts";

/**
 * A PostgreSQL of its own serving TLS with a certificate for "localhost" from a CA this test makes
 * with openssl; the suite's shared PostgreSQL (no TLS) stands for a server that offers none.
 */
const dir = mkdtempSync(path.join(tmpdir(), "capydb-tls-"));
let server: PostgresServer;
const caFile = path.join(dir, "ca.crt");
const otherCaFile = path.join(dir, "other-ca.crt");

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

beforeAll(async () => {
  chmodSync(dir, 0o755);
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=capydb test CA");
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-out", "other-ca.crt", "-days", "2", "-subj", "/CN=another CA");
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  writeFileSync(path.join(dir, "san.ext"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n");
  openssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.crt",
    "-days",
    "2",
    "-extfile",
    "san.ext",
  );
  // The server runs as `postgres` (we are root) and wants its key private to it.
  const pgUid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const pgGid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  for (const f of ["server.key", "server.crt"]) chownSync(path.join(dir, f), pgUid, pgGid);
  chmodSync(path.join(dir, "server.key"), 0o600);
  server = await startPostgres({
    dataDir: path.join(dir, "data"),
    port: await freePort(),
    password: "tls-test-pw",
    settings: { ssl: "on", ssl_cert_file: path.join(dir, "server.crt"), ssl_key_file: path.join(dir, "server.key") },
  });
}, 120_000);
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.unstubAllEnvs();
});

/** The TLS server under a name: "localhost" is in its certificate, "127.0.0.1" is not. */
const cluster = (host: string, extra: Partial<ClusterConnection> = {}): ClusterConnection => ({
  host,
  port: server.port,
  user: server.user,
  password: server.password,
  adminDatabase: "postgres",
  sslmode: null,
  ...extra,
});

async function nodeConnects(conn: ClusterConnection): Promise<{ ok: true; ssl: boolean } | { ok: false; error: string }> {
  let client: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    client = await connect(conn, "postgres");
    const { rows } = await client.query<{ ssl: boolean }>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    return { ok: true, ssl: rows[0]!.ssl };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  } finally {
    await closeQuietly(client);
  }
}

async function pgDump(conn: ClusterConnection) {
  const tools = await pickPgTools({ major: 15, text: "15" }, []);
  return runTool(tools.pgDump, ["--schema-only", "--format=plain"], toolEnv(conn, "postgres"));
}

describe("TLS to clusters: verify-full by default", () => {
  it("node-postgres verifies the chain and the host name with the configured CA", async () => {
    vi.stubEnv("CAPYDB_PG_CA_FILE", caFile);
    expect(await nodeConnects(cluster("localhost"))).toEqual({ ok: true, ssl: true });
    const wrongName = await nodeConnects(cluster("127.0.0.1"));
    expect(wrongName.ok).toBe(false);
    expect(wrongName).toMatchObject({ error: expect.stringMatching(/IP: 127\.0\.0\.1 is not in the cert's list|does not match/) });
    // A CA that did not sign the server's certificate: refused.
    vi.stubEnv("CAPYDB_PG_CA_FILE", otherCaFile);
    expect(await nodeConnects(cluster("localhost"))).toMatchObject({ ok: false, error: expect.stringMatching(/self.signed|unable to (get|verify)/i) });
  });

  it("pg_dump (this machine's PostgreSQL 15 tools, given the CA bundle's path) verifies the same way", async () => {
    vi.stubEnv("CAPYDB_PG_CA_FILE", caFile);
    expect(toolEnv(cluster("localhost"), "postgres")).toMatchObject({ PGSSLMODE: "verify-full", PGSSLROOTCERT: caFile });
    const ok = await pgDump(cluster("localhost"));
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("PostgreSQL database dump");
    const wrongName = await pgDump(cluster("127.0.0.1"));
    expect(wrongName.code).not.toBe(0);
    expect(wrongName.stderr).toMatch(/server certificate for "localhost"( \(and \d+ other names?\))? does not match host name "127\.0\.0\.1"/);
  });

  it("refuses a server without TLS, unless the cluster opted out (then the URL's sslmode, prefer by default)", async () => {
    // The suite's PostgreSQL offers no TLS: a cluster registered without the opt-out cannot be reached in plaintext.
    const shared = new URL(inject("infra").postgresUrl);
    const plain = {
      ...cluster(shared.hostname),
      port: Number(shared.port),
      user: decodeURIComponent(shared.username),
      password: decodeURIComponent(shared.password),
    };
    expect(await nodeConnects(plain)).toEqual({ ok: false, error: "The server does not support SSL connections" });
    const dumpPlain = await pgDump(plain);
    expect(dumpPlain.code).not.toBe(0);
    expect(dumpPlain.stderr).toMatch(/server does not support SSL, but SSL was required/);
    expect(await nodeConnects({ ...plain, insecureTls: true })).toEqual({ ok: true, ssl: false });
    // The TLS server with TLS turned down by the opt-out: plaintext is allowed only then.
    const optedOut = cluster("127.0.0.1", { insecureTls: true, sslmode: "disable" });
    expect(await nodeConnects(optedOut)).toEqual({ ok: true, ssl: false });
    expect((await pgDump(optedOut)).code).toBe(0);
    // The opt-out with `require`: TLS without verification (the name does not matter then).
    expect(await nodeConnects(cluster("127.0.0.1", { insecureTls: true, sslmode: "require" }))).toEqual({ ok: true, ssl: true });
    // Without the opt-out, the URL's weaker sslmode is not used: verify-full still applies.
    vi.stubEnv("CAPYDB_PG_CA_FILE", otherCaFile);
    expect((await nodeConnects(cluster("localhost", { sslmode: "disable" }))).ok).toBe(false);
  });

  it("decides the mode and the CA the same way for both clients", () => {
    vi.stubEnv("CAPYDB_PG_CA_FILE", "");
    const bundle = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];
    const libpq = libpqTls({ sslmode: null });
    expect(libpq.PGSSLMODE).toBe("verify-full");
    // A path every libpq reads when the system has a bundle; `system` (libpq 16+) only when none is found.
    expect([...bundle, "system"]).toContain(libpq.PGSSLROOTCERT);
    expect(nodeTls({ sslmode: null })).toMatchObject({ rejectUnauthorized: true });
    expect(nodeTls({ sslmode: "require", insecureTls: true })).toEqual({ rejectUnauthorized: false });
    expect(nodeTls({ sslmode: "disable", insecureTls: true })).toBe(false);
    expect(libpqTls({ sslmode: null, insecureTls: true })).toEqual({ PGSSLMODE: "prefer" });
    vi.stubEnv("CAPYDB_PG_CA_FILE", path.join(dir, "missing.pem"));
    expect(() => libpqTls({ sslmode: null })).toThrow(/^invalid setting CAPYDB_PG_CA_FILE: .*missing\.pem does not exist$/);
  });

  it("refuses to register a weaker sslmode without the opt-out, and an unknown one always", () => {
    expect(sslmodeProblem(null, false)).toBeUndefined();
    expect(sslmodeProblem("verify-full", false)).toBeUndefined();
    for (const weak of ["disable", "allow", "prefer", "require", "verify-ca"]) {
      expect(sslmodeProblem(weak, false)).toMatch(new RegExp(`^sslmode=${weak} does not verify .* insecure_tls`));
      expect(sslmodeProblem(weak, true)).toBeUndefined();
    }
    expect(sslmodeProblem("strict", true)).toMatch(/^sslmode=strict is not one of disable, allow/);
  });
});
