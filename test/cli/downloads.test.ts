import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { serve, type ServerType } from "@hono/node-server";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackup } from "../../core/backups/backups.ts";
import { getJobItem } from "../../core/jobs/jobs.ts";
import { freePort } from "../../local/wait.ts";
import { objectBytes, postBackup, runQueueUntilSettled, sha256 } from "../worker/support.ts";

/**
 * `capydb backups download`, `capydb exports ...`: the CLI as a child process against the API over
 * real HTTP, downloading from the local S3 through the signed URL. The faults (a stalled, a cut
 * and a corrupted transfer) come from a small HTTP server standing in for S3, reached by rewriting
 * the URL the API answered: a real S3 cannot be made to stall or corrupt on demand.
 */
let env: TestEnv;
let tenant: Tenant;
let key: string;
let apiUrl: string;
let home: string;
let backupId: string;
let pendingBackupId: string;
let artifact: Buffer;
const servers: (ServerType | Server)[] = [];

async function listen(fetch: (req: Request) => Response | Promise<Response>): Promise<string> {
  const port = await freePort();
  await new Promise<void>((resolve) => servers.push(serve({ fetch, port, hostname: "127.0.0.1" }, () => resolve())));
  return `http://127.0.0.1:${port}`;
}

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant();
  key = await tenant.key();
  apiUrl = await listen(env.app().fetch);
  home = mkdtempSync(join(tmpdir(), "capydb-cli-dl-"));
  const job = await postBackup(env, tenant, { label: "take home" });
  const [done] = await runQueueUntilSettled(env.deps, [job.id]);
  expect(done?.state, JSON.stringify(done)).toBe("completed");
  backupId = done!.backup_id!;
  artifact = await objectBytes(env.deps, (await getBackup(env.deps, tenant.projectId, backupId))!.backup_key);
  pendingBackupId = (await getJobItem(env.deps, (await postBackup(env, tenant, { label: "queued" })).id))!.backup_id!;
}, 180_000);
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  if (home) rmSync(home, { recursive: true, force: true });
  await env?.cleanup();
});

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  json(): any;
}

function capydb(args: string[], opts: { apiUrl?: string; tty?: boolean; onSpawn?: (child: ChildProcess) => void } = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CAPYDB_HOME: home,
    CAPYDB_API_URL: opts.apiUrl ?? apiUrl,
    CAPYDB_API_KEY: key,
    CAPYDB_PROJECT: tenant.projectId,
  };
  const argv = [process.execPath, "--import", "tsx", "cli/capydb.ts", ...args];
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const [cmd, cmdArgs] = opts.tty ? ["script", ["-qefc", argv.map(quote).join(" "), "/dev/null"]] : [argv[0]!, argv.slice(1)];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, cmdArgs, { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    opts.onSpawn?.(child);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status, signal) => resolve({ status, signal, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
}
const show = (r: Run) => `exit ${r.status} (${r.signal})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
const dir = () => mkdtempSync(join(home, "out-"));

/**
 * The API, except that download URLs point at a stand-in S3 that serves the artifact with a fault:
 * `stall` sends half and then nothing, `cut` sends half and closes, `corrupt` sends every byte with
 * one flipped. `sent` resolves once the first half is out.
 */
async function faultyStorage(mode: "stall" | "cut" | "corrupt") {
  let sentHalf!: () => void;
  const sent = new Promise<void>((r) => (sentHalf = r));
  const storage = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(artifact.length) });
    const half = Math.floor(artifact.length / 2);
    if (mode === "corrupt") {
      const copy = Buffer.from(artifact);
      copy[half] = copy[half]! ^ 0xff;
      res.end(copy);
      return sentHalf();
    }
    res.write(artifact.subarray(0, half), () => {
      sentHalf();
      if (mode === "cut") setTimeout(() => res.socket?.destroy(), 100);
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => storage.listen(port, "127.0.0.1", r));
  servers.push(storage);
  const app = env.app();
  const url = await listen(async (req) => {
    const res = await app.fetch(req);
    if (!new URL(req.url).pathname.endsWith("/download") || res.status !== 200) return res;
    const b = (await res.json()) as { download: { download_url: string } };
    b.download.download_url = `http://127.0.0.1:${port}/artifact`;
    return Response.json(b);
  });
  return { url, sent };
}

describe("capydb backups download", () => {
  it("downloads a real backup whose file matches its SHA-256 and size, into a directory given with -o", async () => {
    const out = dir();
    const res = await capydb(["backups", "download", backupId, "-o", out]);
    expect(res.status, show(res)).toBe(0);
    expect(res.stderr).toBe(""); // piped: no progress
    const file = join(out, `${backupId}.dump`);
    const backup = (await getBackup(env.deps, tenant.projectId, backupId))!;
    expect(res.json()).toEqual({ file, size_bytes: backup.size_bytes, sha256: backup.sha256 });
    const bytes = readFileSync(file);
    expect(sha256(bytes)).toBe(backup.sha256);
    expect(bytes.length).toBe(backup.size_bytes);
    expect(readdirSync(out)).toEqual([`${backupId}.dump`]); // no partial file left beside it
    // A file name works too, and the table output says what was checked.
    const named = join(out, "prod.dump");
    const table = await capydb(["backups", "download", backupId, "--output", named]);
    expect(table.status, show(table)).toBe(0);
    expect(sha256(readFileSync(named))).toBe(backup.sha256);
  });

  it("shows progress on a terminal only", async () => {
    const out = dir();
    const res = await capydb(["backups", "download", backupId, "-o", join(out, "tty.dump")], { tty: true });
    expect(res.status, show(res)).toBe(0);
    expect(res.stdout).toMatch(/downloading tty\.dump: .* of .*\(\d+%\)/);
    expect(res.stdout).toMatch(/✓ tty\.dump: .*SHA-256 checked/);
  });

  it("an interrupted download (Ctrl-C) leaves no file under the final name and no partial file", async () => {
    const { url, sent } = await faultyStorage("stall");
    const out = dir();
    const target = join(out, "interrupted.dump");
    let child!: ChildProcess;
    const running = capydb(["backups", "download", backupId, "-o", target], { apiUrl: url, onSpawn: (c) => (child = c) });
    await sent;
    // Half is written into the temporary file beside the target: wait until it is there.
    for (let i = 0; i < 100 && !readdirSync(out).some((f) => f.endsWith(".partial")); i++) await new Promise((r) => setTimeout(r, 100));
    expect(readdirSync(out).some((f) => f.endsWith(".partial"))).toBe(true);
    child.kill("SIGINT");
    const res = await running;
    expect(res.status, show(res)).toBe(130);
    expect(res.stderr).toMatch(/download interrupted; nothing was written/);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(out)).toEqual([]);
  });

  it("a cut transfer or a corrupted one exits 1 saying so, keeps nothing and leaves an existing file alone", async () => {
    for (const mode of ["cut", "corrupt"] as const) {
      const { url } = await faultyStorage(mode);
      const out = dir();
      const target = join(out, "prod.dump");
      writeFileSync(target, "yesterday's good copy");
      const res = await capydb(["backups", "download", backupId, "-o", target], { apiUrl: url });
      expect(res.status, `${mode}: ${show(res)}`).toBe(1);
      expect(res.stderr).toMatch(mode === "cut" ? /download failed after \d+ of \d+ bytes/ : /download corrupt: its SHA-256 is [0-9a-f]{64}, the API recorded/);
      expect(readFileSync(target, "utf8")).toBe("yesterday's good copy");
      expect(readdirSync(out)).toEqual(["prod.dump"]);
    }
  });

  it("a backup that is not completed is exit 5 (conflict) with the API's reason; an unknown one exit 4", async () => {
    const out = dir();
    const pending = await capydb(["backups", "download", pendingBackupId, "-o", out]);
    expect(pending.status, show(pending)).toBe(5);
    expect(pending.stderr).toMatch(/is pending: it can be downloaded once it has completed \(HTTP 409\)/);
    expect(pending.stderr).toMatch(/capydb backups list/);
    const unknown = await capydb(["backups", "download", "bkp_01jzzzzzzzzzzzzzzzzzzzzzzz", "-o", out]);
    expect(unknown.status, show(unknown)).toBe(4);
    expect(readdirSync(out)).toEqual([]);
  });

  it("still refuses an unknown -o format on the other commands", async () => {
    const res = await capydb(["backups", "list", "-o", "yaml"]);
    expect(res.status, show(res)).toBe(2);
    expect(res.stderr).toMatch(/Allowed choices are table, json/);
  });
});

describe("capydb exports", () => {
  it("create --wait, list, download: the file restores with pg_restore", async () => {
    // The worker runs in this process while the CLI waits.
    const { startWorkerLoop } = await import("../../local/loops.ts");
    const { createWorkerHandler } = await import("../../core/worker/handler.ts");
    const worker = startWorkerLoop(env.deps, createWorkerHandler(env.deps), { concurrency: 1, waitSeconds: 1 });
    let created: Run;
    try {
      created = await capydb(["exports", "create", "--wait"]);
    } finally {
      await worker.stop();
    }
    expect(created.status, show(created)).toBe(0);
    const exp = created.json().export;
    expect(exp).toMatchObject({ state: "completed", project_id: tenant.projectId, database_name: tenant.database });

    const list = await capydb(["exports", "list"]);
    expect(list.status, show(list)).toBe(0);
    expect(list.json().exports[0]).toEqual(exp);
    const table = await capydb(["exports", "list", "-o", "table"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+STATE\s+SIZE\s+CREATED\s+EXPIRES$/);

    const out = dir();
    const dl = await capydb(["exports", "download", exp.id, "-o", join(out, "home.dump")]);
    expect(dl.status, show(dl)).toBe(0);
    expect(dl.json().size_bytes).toBe(exp.size_bytes);
    const bytes = readFileSync(join(out, "home.dump"));
    expect(sha256(bytes)).toBe(dl.json().sha256);
    // pg_restore reads it as a custom-format archive (its table of contents lists the demo tables).
    const toc = spawnSync("pg_restore", ["--list", join(out, "home.dump")], { encoding: "utf8" });
    expect(toc.status, toc.stderr).toBe(0);
    expect(toc.stdout).toMatch(/TABLE DATA public order_items/);
  }, 120_000);
});
