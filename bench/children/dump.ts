/**
 * Bench child: runs once, in a process of its own (so that its peak RSS, VmHWM, is its own), and
 * prints one `BENCH_RESULT {json}` line:
 * - `dump`: the worker's dump pipeline (`dumpToS3`: pg_dump -> SHA-256 + row counts -> S3 multipart);
 * - `backup`: a verified backup as the worker runs it: `dumpToS3` with the verification restore
 *   reading the same stream (StreamVerification), then its `finish` (stored object re-read and
 *   hashed, pg_restore's exit, row counts), throwaway database dropped;
 * - `verify`: `verifyBackup` (the restore from the stored object, as before stream verification);
 * - `peer`: what users run instead: `pg_dump -Fc -f file`, then the file uploaded with the SDK
 *   (lib-storage's Upload, 8 MiB parts, 4 at a time, like `aws s3 cp`);
 * - `restore`: `restoreInto`, what a restore into a preview runs (download, pg_restore, row counts),
 *   into an existing empty database, streamed or (jobs > 1) from a local file in parallel.
 */
import { Upload } from "@aws-sdk/lib-storage";
import { spawn } from "node:child_process";
import { createReadStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig } from "../../core/config.ts";
import { createDeps } from "../../core/deps.ts";
import { newId } from "../../core/ids.ts";
import { dumpToS3 } from "../../core/pg/dump.ts";
import { workerOptions } from "../../core/worker/options.ts";
import { pickPgTools } from "../../core/pg/pgtools.ts";
import { toolEnv, type ClusterConnection } from "../../core/pg/pgconn.ts";
import { StreamVerification } from "../../core/pg/stream-verify.ts";
import { restoreInto, verifyBackup } from "../../core/pg/verify.ts";
import { procStatusKb, RESULT_PREFIX } from "../lib/proc.ts";

type Input =
  | { mode: "dump"; conn: ClusterConnection; database: string; key: string; compressLevel?: number }
  | { mode: "backup"; conn: ClusterConnection; database: string; key: string }
  | { mode: "peer"; conn: ClusterConnection; database: string; key: string; serverMajor: number }
  | {
      mode: "restore";
      conn: ClusterConnection;
      database: string;
      key: string;
      sha256: string;
      rowCounts: Record<string, number>;
      serverMajor: number;
      jobs?: number;
    }
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
    compressLevel: input.compressLevel,
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
    rowCountsFrom: r.rowCountsFrom,
    pgDumpVersion: r.tools.version,
    vmHwmKb: procStatusKb("self", "VmHWM"),
    partSizeBytes: o.partSizeBytes,
    uploadQueueSize: o.uploadQueueSize,
    s3: s3Summary(t0),
  };
} else if (input.mode === "backup") {
  const o = workerOptions();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const verification = new StreamVerification({ s3: deps.s3, bucket: deps.bucket, conn: input.conn, backupId: newId("backup"), attempt: 1, signal });
  try {
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
      openSink: (tools) => verification.open(tools),
      signal,
    });
    const dumpMs = performance.now() - t0;
    const v = await verification.finish({ key: input.key, sha256: r.sha256, rowCounts: r.rowCounts });
    const cpu = process.cpuUsage(cpu0);
    out = {
      ms: performance.now() - t0,
      dumpMs,
      restoreMs: v.restoreMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      sizeBytes: r.sizeBytes,
      rowCountsFrom: r.rowCountsFrom,
      vmHwmKb: procStatusKb("self", "VmHWM"),
      s3: s3Summary(t0),
    };
  } finally {
    await verification.close();
  }
} else if (input.mode === "peer") {
  const tools = await pickPgTools({ major: input.serverMajor, text: String(input.serverMajor) }, deps.pgBinDirs);
  const dir = mkdtempSync(path.join(tmpdir(), "capydb-bench-peer-"));
  const file = path.join(dir, "peer.dump");
  try {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const child = spawn(tools.pgDump, ["--format=custom", "--no-password", "-f", file], {
        env: toolEnv(input.conn, input.database),
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.once("error", reject);
      child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`pg_dump exited with ${code}: ${stderr}`))));
    });
    const dumpMs = performance.now() - t0;
    await new Upload({
      client: deps.s3,
      params: { Bucket: deps.bucket, Key: input.key, Body: createReadStream(file), ContentType: "application/octet-stream" },
      partSize: 8 * 1024 * 1024,
      queueSize: 4,
    }).done();
    out = { ms: performance.now() - t0, dumpMs, uploadMs: performance.now() - t0 - dumpMs, sizeBytes: statSync(file).size };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else if (input.mode === "restore") {
  const tools = await pickPgTools({ major: input.serverMajor, text: String(input.serverMajor) }, deps.pgBinDirs);
  const t0 = performance.now();
  const r = await restoreInto({
    s3: deps.s3,
    bucket: deps.bucket,
    key: input.key,
    expectedSha256: input.sha256,
    expectedRowCounts: input.rowCounts,
    conn: input.conn,
    database: input.database,
    tools,
    signal,
    jobs: input.jobs,
  });
  out = { ms: performance.now() - t0, restoreMs: r.restoreMs, vmHwmKb: procStatusKb("self", "VmHWM"), s3: s3Summary(t0) };
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
