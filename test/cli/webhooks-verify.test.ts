import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";

/** Runs `capydb webhooks verify` with `body` on standard input. */
function verify(args: string[], body: string, env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "cli/capydb.ts", "webhooks", "verify", ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(body);
  });
}

describe("capydb webhooks verify", () => {
  const secret = "whsec_test_secret";
  const body = '{"id":"evt_1","type":"backup.completed","created_at":"2026-11-29T00:00:00Z","data":{}}';
  const header = (t: number, s = secret, b = body) => `t=${t},v1=${createHmac("sha256", s).update(`${t}.${b}`).digest("hex")}`;
  const now = () => Math.floor(Date.now() / 1000);

  it("accepts a fresh signature of the body (the secret from the environment too)", async () => {
    const ok = await verify(["--secret", secret, "--header", header(now())], body);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^valid: signed at /);
    const fromEnv = await verify(["--header", header(now())], body, { CAPYDB_WEBHOOK_SECRET: secret });
    expect(fromEnv.status, fromEnv.stderr).toBe(0);
  });

  it("refuses another secret, a changed body and an old timestamp, saying why", async () => {
    const wrong = await verify(["--secret", "whsec_other", "--header", header(now())], body);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain("no v1 signature matches");
    const changed = await verify(["--secret", secret, "--header", header(now())], body.replace("evt_1", "evt_2"));
    expect(changed.status).toBe(1);
    const old = await verify(["--secret", secret, "--header", header(now() - 3600)], body);
    expect(old.status).toBe(1);
    expect(old.stderr).toContain("300 s");
    const none = await verify(["--header", header(now())], body);
    expect(none.status).toBe(2);
  });
});
