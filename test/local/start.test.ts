import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/wait.ts";
import { body } from "../support/spec.ts";

/**
 * `npm start` as a user runs it: a real process with its own data directory and ports; Ctrl-C
 * stops everything it started, and the next start finds the data of the first.
 */
const home = mkdtempSync(join(tmpdir(), "capydb-start-"));
chmodSync(home, 0o755);
afterAll(() => rmSync(home, { recursive: true, force: true }));

async function ports() {
  return {
    PORT: await freePort(),
    CAPYDB_AWS_PORT: await freePort(),
    CAPYDB_DYNAMODB_PORT: await freePort(),
    CAPYDB_FAUXQS_PORT: await freePort(),
    CAPYDB_PG_PORT: await freePort(),
  };
}

function start(
  env: Record<string, string | number>,
  dataHome = home,
): { child: ChildProcess; output: () => string; ready: Promise<void>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ["--import", "tsx", "local/main.ts"], {
    env: { ...process.env, CAPYDB_HOME: dataHome, LOG_LEVEL: "WARN", ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (out.includes("CapyDB backups is running")) {
        clearInterval(timer);
        resolve();
      }
    }, 100);
    void exited.then((code) => {
      clearInterval(timer);
      reject(new Error(`npm start exited with ${code}: ${out}`));
    });
  });
  return { child, output: () => out, ready, exited };
}

/** Processes whose command line mentions the data directory (PostgreSQL, the JVM, ...). */
const leftovers = () =>
  spawnSync("ps", ["-eo", "pid,args"], { encoding: "utf8" })
    .stdout.split("\n")
    .filter((l) => l.includes(home) && !l.includes("ps -eo"));

// Each test starts the whole stack (JVM, PostgreSQL, seeding) once or twice: on a busy 2-core machine
// that alone can pass the default 60 s, so the limit here is generous; speed belongs to the bench.
describe("npm start", { timeout: 240_000 }, () => {
  it("brings everything up, writes local.json, stops every child on SIGINT, and keeps data for the next start", async () => {
    const p = await ports();
    const first = start(p);
    await first.ready;
    const json = JSON.parse(readFileSync(join(home, "local.json"), "utf8"));
    expect(Object.keys(json).sort()).toEqual(["api_key", "api_url", "aws", "organization_id", "postgres", "project_id"]);
    expect(Object.keys(json.aws).sort()).toEqual(["bucket", "delivery_queue_url", "dlq_url", "endpoint", "queue_url", "region", "table"]);
    expect(Object.keys(json.postgres)).toEqual(["url"]);
    expect(json.api_url).toBe(`http://127.0.0.1:${p.PORT}`);

    // The console is served by the same API, and its URL is printed.
    expect(first.output()).toContain(`Console   ${json.api_url}/console `);
    const consolePage = await fetch(`${json.api_url}/console`);
    expect(consolePage.status).toBe(200);
    expect(await consolePage.text()).toContain("<h1>Sign in</h1>");

    const health = await fetch(`${json.api_url}/health`);
    expect(await body(health)).toEqual({ status: "ok", dependencies: { dynamodb: "up", sqs: "up", s3: "up", postgres: "up" } });

    // What the README's curl line sends: a POST without any body or content type.
    const bare = await fetch(`${json.api_url}/v1/projects/${json.project_id}/backups`, {
      method: "POST",
      headers: { authorization: `Bearer ${json.api_key}` },
    });
    expect(bare.status, await bare.clone().text()).toBe(202);
    const textBody = await fetch(`${json.api_url}/v1/projects/${json.project_id}/backups`, {
      method: "POST",
      headers: { authorization: `Bearer ${json.api_key}`, "content-type": "text/plain" },
      body: "x",
    });
    expect(textBody.status).toBe(415);
    const created = await fetch(`${json.api_url}/v1/projects/${json.project_id}/backups`, {
      method: "POST",
      headers: { authorization: `Bearer ${json.api_key}`, "content-type": "application/json" },
      body: JSON.stringify({ label: "survives restart" }),
    });
    expect(created.status).toBe(202);
    expect(first.output()).not.toContain(json.postgres.url.split("@")[0].split(":").pop());

    first.child.kill("SIGINT");
    expect(await first.exited).toBe(0);
    expect(leftovers()).toEqual([]);

    const second = start(await ports());
    await second.ready;
    const again = JSON.parse(readFileSync(join(home, "local.json"), "utf8"));
    expect(again.project_id).toBe(json.project_id);
    expect(again.api_key).toBe(json.api_key);
    const list = await body(await fetch(`${again.api_url}/v1/projects/${again.project_id}/backups`, { headers: { authorization: `Bearer ${again.api_key}` } }));
    expect(list.backups.map((b: { label: string }) => b.label)).toContain("survives restart");

    // capydb-admin reads the same local.json.
    const admin = spawnSync(process.execPath, ["--import", "tsx", "cli/admin.ts", "key", "list", "--org", again.organization_id], {
      env: { ...process.env, CAPYDB_HOME: home },
      encoding: "utf8",
    });
    expect(admin.status, admin.stderr).toBe(0);
    const keys = JSON.parse(admin.stdout);
    expect(keys.map((k: { name: string }) => k.name)).toContain("local-dev");
    expect(admin.stdout).not.toContain(again.api_key);

    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  it("after a kill -9, the next start stops what the first left running (checked to be that program for that data directory), says so in one line, and comes up", async () => {
    const crashHome = mkdtempSync(join(tmpdir(), "capydb-crash-"));
    chmodSync(crashHome, 0o755);
    const running = () =>
      spawnSync("ps", ["-eo", "pid,args"], { encoding: "utf8" })
        .stdout.split("\n")
        .filter((l) => l.includes(crashHome) && !l.includes("ps -eo"));
    // An unrelated process whose id the record claims with another command line: a reused id, to be left alone.
    const bystander = spawn("sleep", ["300"], { stdio: "ignore" });
    try {
      const p = await ports();
      const first = start(p, crashHome);
      await first.ready;
      first.child.kill("SIGKILL");
      await first.exited;
      expect(running().length, "PostgreSQL and DynamoDB Local outlive the kill -9").toBeGreaterThanOrEqual(2);
      const record = JSON.parse(readFileSync(join(crashHome, "children.json"), "utf8"));
      expect(record.children.map((c: { what: string }) => c.what).sort()).toEqual(["DynamoDB Local", "PostgreSQL"]);
      record.children.push({ what: "PostgreSQL", pid: bystander.pid, command: `postgres -D ${crashHome}/postgres` });
      writeFileSync(join(crashHome, "children.json"), JSON.stringify(record));

      // The same ports, which the leftovers hold.
      const second = start(p, crashHome);
      await second.ready;
      const lines = second
        .output()
        .split("\n")
        .filter((l) => l.startsWith("capydb: "));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^capydb: stopped what the previous run left running: (PostgreSQL|DynamoDB Local) \(pid \d+\), (PostgreSQL|DynamoDB Local) \(pid \d+\)$/,
      );
      expect(lines[0]).not.toContain(`pid ${bystander.pid}`);
      expect(bystander.exitCode).toBeNull();
      expect(bystander.signalCode).toBeNull();
      const json = JSON.parse(readFileSync(join(crashHome, "local.json"), "utf8"));
      expect((await body(await fetch(`${json.api_url}/health`))).status).toBe("ok");

      second.child.kill("SIGINT");
      expect(await second.exited).toBe(0);
      expect(running()).toEqual([]);
    } finally {
      bystander.kill();
      for (const l of spawnSync("ps", ["-eo", "pid,args"], { encoding: "utf8" })
        .stdout.split("\n")
        .filter((l) => l.includes(crashHome) && !l.includes("ps -eo"))) {
        process.kill(Number(l.trim().split(/\s+/)[0]), "SIGKILL");
      }
      rmSync(crashHome, { recursive: true, force: true });
    }
  });

  it("ends with one clear line when a port is taken", async () => {
    const p = await ports();
    const blocker = createServer().listen(p.PORT, "127.0.0.1");
    try {
      const run = start(p);
      await expect(run.ready).rejects.toThrow();
      expect(await run.exited).toBe(1);
      expect(run.output().trim()).toMatch(new RegExp(`^capydb: port ${p.PORT} \\(api\\) is already in use.*PORT$`));
    } finally {
      blocker.close();
    }
  });

  it("ends with one clear line, and leaves nothing running, when Java is missing", async () => {
    const run = start({ ...(await ports()), CAPYDB_JAVA: "/nonexistent/java" });
    await expect(run.ready).rejects.toThrow();
    expect(await run.exited).toBe(1);
    expect(run.output().trim()).toMatch(/^capydb: Java not found .*apt-get install/);
    expect(leftovers()).toEqual([]);
  });

  it("ends with one clear line when the PostgreSQL binaries are missing", async () => {
    const run = start({ ...(await ports()), CAPYDB_PG_SERVER_BIN: "/nonexistent/bin" });
    await expect(run.ready).rejects.toThrow();
    expect(await run.exited).toBe(1);
    expect(run.output().trim()).toMatch(/^capydb: PostgreSQL server binaries not found .*apt-get install postgresql/);
    expect(leftovers()).toEqual([]);
  });

  // As root, PostgreSQL runs as `postgres`, which cannot enter a private (mode 700) checkout.
  it.skipIf(userInfo().uid !== 0)("works from a private directory as root, keeping PostgreSQL's data reachable", async () => {
    const privateHome = mkdtempSync(join(tmpdir(), "capydb-private-")); // mode 700, owned by root
    const relocate = mkdtempSync(join(tmpdir(), "capydb-relocate-"));
    chmodSync(relocate, 0o755);
    try {
      const run = start({ ...(await ports()), CAPYDB_PG_RELOCATE_DIR: relocate }, join(privateHome, ".capydb"));
      await run.ready;
      const json = JSON.parse(readFileSync(join(privateHome, ".capydb", "local.json"), "utf8"));
      expect((await body(await fetch(`${json.api_url}/health`))).dependencies.postgres).toBe("up");
      run.child.kill("SIGINT");
      expect(await run.exited).toBe(0);
      const again = start({ ...(await ports()), CAPYDB_PG_RELOCATE_DIR: relocate }, join(privateHome, ".capydb"));
      await again.ready;
      expect(JSON.parse(readFileSync(join(privateHome, ".capydb", "local.json"), "utf8")).project_id).toBe(json.project_id);
      again.child.kill("SIGTERM");
      expect(await again.exited).toBe(0);
    } finally {
      rmSync(privateHome, { recursive: true, force: true });
      rmSync(relocate, { recursive: true, force: true });
    }
  });
});
