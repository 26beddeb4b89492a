import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { restoreCommandScript, WalSpool } from "../../core/pg/wal-spool.ts";

const run = promisify(execFile);
const SEGMENT = 16 * 1024 * 1024;

/** The recovery instance's restore_command and the worker's spool, talking through the spool directory as PostgreSQL drives them. */
describe("WalSpool and its restore_command", () => {
  const dirs: string[] = [];
  let spool: WalSpool | undefined;
  afterEach(async () => {
    await spool?.stop();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** A spool (2 ahead, 2 at a time) over `segment`'s answers, and its restore_command script; `fetched` lists every fetch. */
  async function startSpool(segment: (name: string) => Buffer | undefined): Promise<{ dir: string; fetched: string[]; script: string; started: WalSpool }> {
    const dir = mkdtempSync(join(tmpdir(), "capydb-spool-"));
    dirs.push(dir);
    const fetched: string[] = [];
    const started = new WalSpool({
      dir: join(dir, "spool"),
      prefetch: 2,
      parallel: 2,
      source: {
        async fetchSegment(_tl, name) {
          fetched.push(name);
          return segment(name);
        },
      },
    });
    spool = started;
    await started.start();
    const script = join(dir, "restore_command.sh");
    writeFileSync(script, restoreCommandScript(join(dir, "spool"), process.pid), { mode: 0o755 });
    return { dir, fetched, script, started };
  }

  it("answers a segment asked for a second time (PostgreSQL re-reads one at the end of recovery) instead of leaving the second ask waiting", async () => {
    const { dir, fetched, script } = await startSpool((name) => (name === "000000010000000000000004" ? Buffer.alloc(SEGMENT, 4) : undefined));
    const ask = (dest: string) => run("sh", [script, "000000010000000000000004", join(dir, dest)], { timeout: 20_000 });

    await ask("first");
    expect(readFileSync(join(dir, "first")).equals(Buffer.alloc(SEGMENT, 4))).toBe(true);
    // Again, after the first copy was moved into place: served again (before the fix it waited for ever).
    await ask("second");
    expect(readFileSync(join(dir, "second")).equals(Buffer.alloc(SEGMENT, 4))).toBe(true);
    expect(fetched.filter((n) => n === "000000010000000000000004")).toHaveLength(2);
    // A segment past the archive's end is "not found" (exit 1), asked once or twice.
    for (let i = 0; i < 2; i++) {
      const missing = await run("sh", [script, "000000010000000000000009", join(dir, "none")], { timeout: 20_000 }).catch((e: { code?: number }) => e);
      expect((missing as { code?: number }).code).toBe(1);
    }
  }, 60_000);

  it("fetches a segment fetched ahead only once, although its restore_command took it before the spool saw the ask", async () => {
    const have = new Set(["000000010000000000000004", "000000010000000000000005", "000000010000000000000006"]);
    const { dir, fetched, script, started } = await startSpool((name) => (have.has(name) ? Buffer.alloc(SEGMENT, name.charCodeAt(23)) : undefined));
    const ask = (name: string, dest: string) => run("sh", [script, name, join(dir, dest)], { timeout: 20_000 });

    // Replay will start at 04: fetched (with 05 and 06) before anyone asks, as while a base backup extracts.
    started.warm("000000010000000000000004");
    await waitFor(() => [...have].every((name) => existsSync(join(dir, "spool", "ready", name))));
    for (const [name, dest] of [
      ["000000010000000000000004", "a"],
      ["000000010000000000000005", "b"],
      ["000000010000000000000006", "c"],
    ] as const) {
      await ask(name, dest);
      expect(readFileSync(join(dir, dest)).equals(Buffer.alloc(SEGMENT, name.charCodeAt(23)))).toBe(true);
    }
    // Each ask is seen (it drives the fetching ahead) but finds its file ready: nothing is fetched twice.
    await waitFor(() => started.stats.requests >= 3);
    await new Promise((r) => setTimeout(r, 300));
    for (const name of have)
      expect(
        fetched.filter((n) => n === name),
        name,
      ).toHaveLength(1);
    expect(started.stats.waitedMs).toBe(0);
  }, 60_000);
});

async function waitFor(check: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
