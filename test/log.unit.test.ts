import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { localLogFormat } from "../core/log.ts";
import { bytes, duration, formatLogLine } from "../core/log-format.ts";

const ESC = "\x1b[";
const envelope = { level: "INFO", timestamp: "2026-11-29T14:02:07.412Z", service: "capydb-backups", sampling_rate: 0 };

describe("readable log lines", () => {
  it("a request: time, level, method, path, status and duration; no envelope, no request id", () => {
    const line = formatLogLine(
      { ...envelope, message: "request", request_id: "8115e411", key_id: "key_01", method: "POST", path: "/v1/projects/prj_1/backups", status: 202, ms: 18 },
      { color: false },
    );
    expect(line).toBe("14:02:07.412 INFO  request POST /v1/projects/prj_1/backups 202 18ms");
  });

  it("a backup's steps: ids bare, size and times in units, state", () => {
    expect(
      formatLogLine(
        { ...envelope, message: "job claimed", job_id: "job_1", backup_id: "bkp_1", state: "running", attempt: 1, worker_id: "local-1" },
        { color: false },
      ),
    ).toBe("14:02:07.412 INFO  job claimed job_1 bkp_1 state=running attempt=1");
    expect(
      formatLogLine(
        { ...envelope, message: "backup dumped", job_id: "job_1", backup_id: "bkp_1", size_bytes: 2_516_582, dump_ms: 734, tables: 4 },
        { color: false },
      ),
    ).toBe("14:02:07.412 INFO  backup dumped job_1 bkp_1 size=2.4MB dump=734ms tables=4");
    expect(formatLogLine({ ...envelope, message: "backup verified", job_id: "job_1", backup_id: "bkp_1", restore_ms: 3120 }, { color: false })).toBe(
      "14:02:07.412 INFO  backup verified job_1 bkp_1 restore=3.1s",
    );
  });

  it("any other prefixed id prints bare too; other *_id fields keep their name", () => {
    const exp = "exp_01m8mrv492t1a6g30r6x55qfqa";
    expect(
      formatLogLine(
        { ...envelope, message: "export requested", project_id: "prj_1", export_id: exp, job_id: "job_1", schedule_ref: "x", thing_id: "plain" },
        { color: false },
      ),
    ).toBe(`14:02:07.412 INFO  export requested prj_1 job_1 ${exp} schedule_ref=x thing_id=plain`);
  });

  it("a warning keeps the ids that help find the cause, and quotes free text on the same line", () => {
    const line = formatLogLine(
      {
        ...envelope,
        level: "WARN",
        message: "backup attempt failed; will retry",
        request_id: "r1",
        worker_id: "w1",
        job_id: "job_1",
        error: 'connection refused\n  at "pg"',
        retry_in_seconds: 30,
      },
      { color: false },
    );
    expect(line).toBe(
      '14:02:07.412 WARN  backup attempt failed; will retry job_1 request_id=r1 worker_id=w1 error="connection refused\\n  at \\"pg\\"" retry_in_seconds=30',
    );
    expect(line).not.toContain("\n");
  });

  it("colour only when asked: level, status and ids painted; the text is the same without the escapes", () => {
    const attrs = { ...envelope, level: "ERROR", message: "request", method: "GET", path: "/health", status: 503, ms: 2 };
    const plain = formatLogLine(attrs, { color: false });
    const coloured = formatLogLine(attrs, { color: true });
    expect(plain).not.toContain(ESC);
    expect(coloured).toContain(`${ESC}31mERROR${ESC}0m`);
    expect(coloured).toContain(`${ESC}31m503${ESC}0m`);
    expect(coloured.replace(/\x1b\[\d+m/g, "")).toBe(plain);
  });

  it("units", () => {
    expect([bytes(512), bytes(2048), bytes(5 * 1024 ** 3)]).toEqual(["512B", "2.0KB", "5.0GB"]);
    expect([duration(12), duration(1500), duration(125_000)]).toEqual(["12ms", "1.5s", "2m5s"]);
  });

  it("CAPYDB_LOG_FORMAT: auto by default, json or pretty on request, anything else refused with its name", () => {
    expect(localLogFormat({})).toBe("auto");
    expect(localLogFormat({ CAPYDB_LOG_FORMAT: "JSON" })).toBe("json");
    expect(localLogFormat({ CAPYDB_LOG_FORMAT: "pretty" })).toBe("pretty");
    expect(() => localLogFormat({ CAPYDB_LOG_FORMAT: "yaml" })).toThrow(/^invalid setting CAPYDB_LOG_FORMAT/);
  });
});

/**
 * The real logger in a child process: its stdout/stderr piped, or on a pseudo-terminal (util-linux
 * `script`, which puts the child on a pty and copies what it prints to its own stdout).
 */
const program = `
  const { createLogger, localLogFormat } = await import(${JSON.stringify(new URL("../core/log.ts", import.meta.url).pathname)});
  const log = createLogger("INFO", "capydb-backups", localLogFormat());
  const json = createLogger("INFO", "capydb-backups", "json");
  for (const l of [log, json]) {
    const child = l.createChild({ persistentKeys: { request_id: "req-1" } });
    child.info("request", { method: "GET", path: "/health", status: 200, ms: 3 });
    l.debug("dispatcher tick", { started: 0 });
    l.info("backup dumped", { job_id: "job_1", backup_id: "bkp_1", size_bytes: 2048, dump_ms: 1500 });
    l.warn("backup failed", { job_id: "job_1", error: "boom" });
    if (l === log) process.stdout.write("--\\n");
  }
`;

function run(env: Record<string, string>, tty: boolean) {
  const argv = [process.execPath, "--import", "tsx", "--input-type=module", "-e", program];
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
  const res = tty
    ? spawnSync("script", ["-qefc", argv.map(quote).join(" "), "/dev/null"], { env: base, encoding: "utf8" })
    : spawnSync(argv[0]!, argv.slice(1), { env: base, encoding: "utf8" });
  expect(res.status, res.stderr).toBe(0);
  return { stdout: res.stdout.replace(/\r\n/g, "\n"), stderr: res.stderr };
}

const READABLE = /^\d{2}:\d{2}:\d{2}\.\d{3} (INFO |WARN |ERROR|DEBUG) \S/;

describe("the logger", () => {
  it("piped: JSON lines exactly like the plain JSON logger's, warnings on stderr", () => {
    const { stdout, stderr } = run({ TERM: "xterm-256color", FORCE_COLOR: "1" }, false);
    const [mine, plain] = stdout.split("--\n").map((s) => s.trim().split("\n"));
    const strip = (l: string) => ({ ...JSON.parse(l), timestamp: undefined });
    expect(mine!.map(strip)).toEqual(plain!.map(strip));
    expect(mine!.map((l) => JSON.parse(l).message)).toEqual(["request", "backup dumped"]);
    expect(mine![0]).toMatch(
      /^\{"level":"INFO","message":"request","timestamp":"[^"]+","service":"capydb-backups","sampling_rate":0,"request_id":"req-1","method":"GET"/,
    );
    const warnings = stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(warnings.map((w) => [w.level, w.message])).toEqual([
      ["WARN", "backup failed"],
      ["WARN", "backup failed"],
    ]);
  });

  it("on a terminal: one readable, coloured line per event (children too); below the level, nothing", () => {
    const { stdout } = run({ TERM: "xterm-256color" }, true);
    const lines = stdout.split("--\n")[0]!.trim().split("\n");
    expect(lines.map((l) => l.replace(/\x1b\[\d+m/g, ""))).toEqual([
      expect.stringMatching(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}request GET \/health 200 3ms$/),
      expect.stringMatching(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}backup dumped job_1 bkp_1 size=2\.0KB dump=1\.5s$/),
      expect.stringMatching(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}backup failed job_1 error=boom$/),
    ]);
    for (const l of lines) expect(l).toContain(ESC);
  });

  it.each([
    ["NO_COLOR=1", { NO_COLOR: "1", TERM: "xterm-256color" }],
    ["TERM=dumb", { TERM: "dumb" }],
  ])("on a terminal with %s: readable, without colour", (_name, env) => {
    const { stdout } = run(env, true);
    const lines = stdout.split("--\n")[0]!.trim().split("\n");
    expect(lines).toHaveLength(3);
    for (const l of lines) {
      expect(l).toMatch(READABLE);
      expect(l).not.toContain(ESC);
    }
  });

  it("CAPYDB_LOG_FORMAT=json keeps JSON on a terminal", () => {
    const { stdout } = run({ CAPYDB_LOG_FORMAT: "json", TERM: "xterm-256color" }, true);
    for (const l of stdout.split("--\n")[0]!.trim().split("\n")) expect(() => JSON.parse(l)).not.toThrow();
  });
});
