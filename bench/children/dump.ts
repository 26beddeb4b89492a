/**
 * Bench child: runs the worker's own dump pipeline (`dumpToS3`: pg_dump -> SHA-256 -> S3
 * multipart) or its verification (`verifyBackup`) once, in a process of its own so that its peak
 * RSS (VmHWM) is the pipeline's alone, and prints one `BENCH_RESULT {json}` line.
 */
import { loadConfig } from "../../core/config.ts";
import { createDeps } from "../../core/deps.ts";
import { newId } from "../../core/ids.ts";
import type { ClusterConnection } from "../../core/orgs/orgs.ts";
import { dumpToS3 } from "../../core/worker/dump.ts";
import { workerOptions } from "../../core/worker/options.ts";
import { pickPgTools } from "../../core/worker/pgtools.ts";
import { verifyBackup } from "../../core/worker/verify.ts";
import { procStatusKb, RESULT_PREFIX } from "../lib/proc.ts";

type Input =
  | { mode: "dump"; conn: ClusterConnection; database: string; key: string }
  | { mode: "verify"; conn: ClusterConnection; key: string; sha256: string; rowCounts: Record<string, number>; serverMajor: number };

const input = JSON.parse(process.env.BENCH_INPUT ?? "{}") as Input;
const deps = createDeps(loadConfig());

// When each S3 call of the pipeline ends, to split the time between streaming and finishing.
const s3Ops: { op: string; startMs: number; endMs: number }[] = [];
deps.s3.middlewareStack.add(
  (next, context) => async (args) => {
    const startMs = performance.now();
    try {
      return await next(args);
    } finally {
      s3Ops.push({ op: String(context.commandName).replace(/Command$/, ""), startMs, endMs: performance.now() });
    }
  },
  { step: "initialize", name: "benchS3Timer" },
);

function s3Summary(t0: number) {
  const by: Record<string, { calls: number; ms: number; lastEndMs: number }> = {};
  for (const o of s3Ops) {
    const s = (by[o.op] ??= { calls: 0, ms: 0, lastEndMs: 0 });
    s.calls++;
    s.ms += o.endMs - o.startMs;
    s.lastEndMs = Math.max(s.lastEndMs, o.endMs - t0);
  }
  return by;
}

const signal = new AbortController().signal;
let out: unknown;
if (input.mode === "dump") {
  const o = workerOptions();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await dumpToS3({
    s3: deps.s3,
    bucket: deps.bucket,
    key: input.key,
    conn: input.conn,
    database: input.database,
    pgBinDirs: deps.pgBinDirs,
    partSizeBytes: o.partSizeBytes,
    uploadQueueSize: o.uploadQueueSize,
    lockWaitTimeoutMs: o.lockWaitTimeoutMs,
    signal,
  });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  out = {
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    sizeBytes: r.sizeBytes,
    sha256: r.sha256,
    rowCounts: r.rowCounts,
    pgDumpVersion: r.tools.version,
    vmHwmKb: procStatusKb("self", "VmHWM"),
    partSizeBytes: o.partSizeBytes,
    uploadQueueSize: o.uploadQueueSize,
    s3: s3Summary(t0),
  };
} else {
  const tools = await pickPgTools({ major: input.serverMajor, text: String(input.serverMajor) }, deps.pgBinDirs);
  const t0 = performance.now();
  const r = await verifyBackup({
    s3: deps.s3,
    bucket: deps.bucket,
    key: input.key,
    expectedSha256: input.sha256,
    expectedRowCounts: input.rowCounts,
    conn: input.conn,
    backupId: newId("backup"),
    attempt: 1,
    tools,
    signal,
  });
  out = { ms: performance.now() - t0, restoreMs: r.restoreMs, vmHwmKb: procStatusKb("self", "VmHWM"), s3: s3Summary(t0) };
}
process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(out)}\n`);
deps.s3.destroy();
deps.ddb.destroy();
