import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/wait.ts";

/**
 * What `npm start` prints, run exactly so (`npm start`, the machine's npm): on a terminal (a
 * pseudo-terminal from util-linux `script`, stopped with Ctrl-C typed into it) one readable line
 * per event, coloured; piped, JSON lines as deployed functions write them.
 */
const home = mkdtempSync(join(tmpdir(), "capydb-start-logs-"));
chmodSync(home, 0o755);
afterAll(() => rmSync(home, { recursive: true, force: true }));

const ESC = /\x1b\[[0-9;]*m/g;
const READABLE = /^\d{2}:\d{2}:\d{2}\.\d{3} (INFO |WARN |ERROR|DEBUG) (.+)$/;
const BANNER_END = "Ctrl-C stops everything";

async function settings(): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = { ...process.env, CAPYDB_HOME: home, TERM: "xterm-256color", LOG_LEVEL: "INFO" };
  // A person's terminal, not a CI run: Node reports 2 colours whenever `CI` is set by an unknown CI.
  for (const k of ["FORCE_COLOR", "NO_COLOR", "NODE_DISABLE_COLORS", "CAPYDB_LOG_FORMAT", "CI"]) delete env[k];
  for (const k of ["PORT", "CAPYDB_AWS_PORT", "CAPYDB_DYNAMODB_PORT", "CAPYDB_FAUXQS_PORT", "CAPYDB_PG_PORT"]) env[k] = String(await freePort());
  return env;
}

function npmStart(env: NodeJS.ProcessEnv, tty: boolean) {
  // On a terminal: `script` runs npm on a pty and copies the pty's output to its stdout; what is
  // written to its stdin is typed into the pty (\x03 is Ctrl-C, delivered by the pty as SIGINT to
  // the foreground process group, as in a real terminal). Piped: its own process group, for the same SIGINT.
  const child: ChildProcess = tty
    ? spawn("script", ["-qefc", "npm start", "/dev/null"], { env, stdio: ["pipe", "pipe", "pipe"] })
    : spawn("npm", ["start"], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  let done = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      done = true;
      resolve(code);
    }),
  );
  const waitFor = (what: string | RegExp) =>
    new Promise<void>((resolve, reject) => {
      const found = () => (typeof what === "string" ? stdout.includes(what) : what.test(stdout));
      const timer = setInterval(() => {
        if (found()) {
          clearInterval(timer);
          resolve();
        }
      }, 100);
      void exited.then((code) => {
        clearInterval(timer);
        if (!found()) reject(new Error(`npm start exited with ${code} before printing ${what}: ${stdout}${stderr}`));
      });
    });
  const stop = async () => {
    if (done) return exited;
    if (tty) child.stdin!.write("\x03");
    else process.kill(-child.pid!, "SIGINT");
    return exited;
  };
  return { stdout: () => stdout.replace(/\r\n/g, "\n"), stderr: () => stderr, waitFor, stop };
}

/** The lines after the ready banner: the log. */
const logLines = (out: string) =>
  out
    .slice(out.indexOf(BANNER_END))
    .split("\n")
    .slice(1)
    .filter((l) => l.trim() !== "");

const leftovers = () =>
  spawnSync("ps", ["-eo", "pid,pgid,args"], { encoding: "utf8" })
    .stdout.split("\n")
    .filter((l) => l.includes(home) && !l.includes("ps -eo"));

/**
 * Ctrl-C reaches npm too, which dies of it at once (exit code null, or 130 through `script`)
 * while the service it started is still stopping its children: wait for those to be gone.
 */
async function stoppedCleanly(code: number | null): Promise<void> {
  expect([0, 130, null]).toContain(code);
  for (let i = 0; i < 600 && leftovers().length; i++) await new Promise((r) => setTimeout(r, 100));
  expect(leftovers()).toEqual([]);
}

describe("npm start's log", () => {
  it("on a terminal: a backup's life in five readable, coloured lines; nothing else but the requests; no npm warnings", async () => {
    const run = npmStart(await settings(), true);
    try {
      await run.waitFor(BANNER_END);
      const local = JSON.parse(readFileSync(join(home, "local.json"), "utf8"));
      const res = await fetch(`${local.api_url}/v1/projects/${local.project_id}/backups`, {
        method: "POST",
        headers: { authorization: `Bearer ${local.api_key}` },
      });
      const created = (await res.json()) as { job: { id: string } };
      expect(res.status, JSON.stringify(created)).toBe(202);
      const jobId: string = created.job.id;
      await run.waitFor(/backup completed/);

      const out = run.stdout();
      expect(out).not.toMatch(/npm (warn|WARN)/);
      const lines = logLines(out);
      expect(lines.length, out).toBeGreaterThan(0);
      for (const l of lines) {
        expect(l, "coloured").toMatch(ESC);
        expect(l.replace(ESC, ""), "readable").toMatch(READABLE);
      }
      const plain = lines.map((l) => l.replace(ESC, "").replace(/^\S+ \S+\s+/, ""));
      // The requests, and a backup's life, in order; nothing else (an idle dispatcher tick is DEBUG).
      const life = plain.filter((l) => !l.startsWith("request "));
      expect(life.map((l) => l.split(/ (job|prj)_/)[0])).toEqual(["backup requested", "job claimed", "backup dumped", "backup verified", "backup completed"]);
      for (const l of life) expect(l).toContain(jobId);
      expect(life[1]).toMatch(/state=running attempt=1/);
      expect(life[2]).toMatch(/ size=\d+(\.\d)?[KMG]?B dump=\d+(\.\d)?m?s tables=\d+$/);
      expect(life[3]).toMatch(/ restore=\d+(\.\d)?m?s$/);
      expect(life[4]).toMatch(/state=completed attempt=1 size=\S+ dump=\S+ restore=\S+/);
      expect(plain.filter((l) => l.startsWith("request "))).toContainEqual(
        expect.stringMatching(new RegExp(`^request POST /v1/projects/${local.project_id}/backups 202 \\d+ms$`)),
      );
      // Ctrl-C reaches the service alone: PostgreSQL and DynamoDB Local lead process groups of
      // their own, so the service stops them after its loops (no failed call logged on the way out).
      const standIns = leftovers()
        .map((l) => l.trim().split(/\s+/))
        .filter(([, , cmd, ...rest]) => /\/postgres$/.test(cmd ?? "") || (/java$/.test(cmd ?? "") && rest.includes("-jar")));
      expect(standIns.length, leftovers().join("\n")).toBe(2);
      for (const [pid, pgid, cmd] of standIns) expect({ cmd, pgid }).toEqual({ cmd, pgid: pid });
    } catch (err) {
      await run.stop();
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- npm start printed ---\n${run.stdout()}${run.stderr()}`);
    }
    await stoppedCleanly(await run.stop());
  }, 240_000);

  it("piped: JSON lines, as deployed", async () => {
    const run = npmStart(await settings(), false);
    try {
      await run.waitFor(BANNER_END);
      const local = JSON.parse(readFileSync(join(home, "local.json"), "utf8"));
      expect((await fetch(`${local.api_url}/v1/openapi.json`)).status).toBe(200);
      await run.waitFor(/"message":"request"/);
      const lines = logLines(run.stdout());
      for (const l of lines) expect(() => JSON.parse(l), l).not.toThrow();
      expect(lines.map((l) => JSON.parse(l))).toContainEqual(
        expect.objectContaining({
          level: "INFO",
          message: "request",
          service: "capydb-backups",
          method: "GET",
          path: "/v1/openapi.json",
          status: 200,
          request_id: expect.any(String),
          timestamp: expect.any(String),
        }),
      );
      expect(run.stdout()).not.toMatch(ESC);
      expect(run.stderr()).toBe("");
    } catch (err) {
      await run.stop();
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- npm start printed ---\n${run.stdout()}${run.stderr()}`);
    }
    await stoppedCleanly(await run.stop());
  }, 240_000);
});
