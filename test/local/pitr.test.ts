import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/wait.ts";
import { body } from "../support/spec.ts";
import { countAndMaxId } from "../support/preview-rows.ts";

/**
 * The headline case of point-in-time restores (issue 32), on `npm start` itself, as a user does
 * it: the local stack archives its PostgreSQL's WAL (the archiver, its first base backup), a table
 * of the demo database gets rows for a while and is dropped, and `capydb restore --restore-time
 * <before the drop> --wait` gives a preview where the table is back with exactly the rows
 * committed at or before that moment.
 */
const home = mkdtempSync(join(tmpdir(), "capydb-pitr-start-"));
chmodSync(home, 0o755);
let stack: ChildProcess | undefined;
afterAll(async () => {
  // On a failure too: Ctrl-C stops what npm start started (a SIGKILL would leave PostgreSQL and the JVM running).
  if (stack && stack.exitCode === null) {
    const gone = new Promise((r) => stack!.once("exit", r));
    stack.kill("SIGINT");
    await Promise.race([gone, sleep(30_000)]);
    if (stack.exitCode === null) stack.kill("SIGKILL");
  }
  rmSync(home, { recursive: true, force: true });
});

function capydb(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "cli/capydb.ts", ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CAPYDB_HOME: home },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 240_000);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("npm start: a point-in-time restore as a user does it", { timeout: 420_000 }, () => {
  it("brings a dropped table back into a preview with exactly the rows committed by the chosen moment", async () => {
    const ports = {
      PORT: await freePort(),
      CAPYDB_AWS_PORT: await freePort(),
      CAPYDB_DYNAMODB_PORT: await freePort(),
      CAPYDB_FAUXQS_PORT: await freePort(),
      CAPYDB_PG_PORT: await freePort(),
    };
    const child = spawn(process.execPath, ["--import", "tsx", "local/main.ts"], {
      env: { ...process.env, CAPYDB_HOME: home, LOG_LEVEL: "WARN", ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    stack = child;
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    for (let i = 0; !out.includes("CapyDB backups is running"); i++) {
      if (child.exitCode !== null || i > 1800) throw new Error(`npm start did not come up: ${out}`);
      await sleep(100);
    }
    const local = JSON.parse(readFileSync(join(home, "local.json"), "utf8"));
    const auth = { authorization: `Bearer ${local.api_key}` };

    // The archive's first base backup opens the window.
    let pitr: { available: boolean } | undefined;
    for (let i = 0; i < 240 && !pitr?.available; i++) {
      pitr = (await body(await fetch(`${local.api_url}/v1/projects/${local.project_id}/pitr`, { headers: auth }))).pitr;
      if (!pitr?.available) await sleep(500);
    }
    expect(pitr, out).toMatchObject({ available: true });

    // Rows for a while, each its own transaction; the moment chosen lies between commit 12 and 13.
    const url = new URL(local.postgres.url);
    url.pathname = "/demo";
    const db = new pg.Client({ connectionString: url.toString() });
    await db.connect();
    let at = "";
    try {
      await db.query("CREATE TABLE headline (id int PRIMARY KEY, note text NOT NULL)");
      for (let id = 1; id <= 20; id++) {
        await db.query("INSERT INTO headline VALUES ($1::int, 'row ' || $1::int)", [id]);
        if (id === 12) {
          await sleep(50);
          at = new Date().toISOString(); // after commit 12 returned, before insert 13 starts
        }
        await sleep(100);
      }
      await db.query("DROP TABLE headline"); // the accident
    } finally {
      await db.end();
    }

    // As a user checks `capydb pitr` first: the archive (a few seconds behind) has reached the drop.
    const droppedAt = Date.now();
    let latest = 0;
    for (let i = 0; i < 240 && latest < droppedAt; i++) {
      const w = (await body(await fetch(`${local.api_url}/v1/projects/${local.project_id}/pitr`, { headers: auth }))).pitr;
      latest = w.latest_restore_time ? Date.parse(w.latest_restore_time) : 0;
      if (latest < droppedAt) await sleep(500);
    }
    expect(latest).toBeGreaterThanOrEqual(droppedAt - 1000);

    const restored = await capydb(["restore", "--restore-time", at, "--preview-name", "before-drop", "--wait", "-o", "json"]);
    expect(restored.status, `${restored.stdout}\n${restored.stderr}\n--- npm start ---\n${out.slice(-8000)}`).toBe(0);
    const { job, preview } = JSON.parse(restored.stdout);
    expect(job).toMatchObject({ type: "project.restore", state: "completed" });
    expect(preview).toMatchObject({ name: "before-drop", state: "ready", source_kind: "pitr", source_restore_time: at });

    const connect = await capydb(["previews", "connect", preview.id, "-o", "table"]);
    expect(connect.status, connect.stderr).toBe(0);
    expect(await countAndMaxId(connect.stdout.trim(), "headline")).toEqual({ n: "12", max: 12 });

    child.kill("SIGINT");
    expect(await exited).toBe(0);
  });
});
