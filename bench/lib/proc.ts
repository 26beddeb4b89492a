import { readFileSync } from "node:fs";

/** The line a bench child prints its JSON result on. */
export const RESULT_PREFIX = "BENCH_RESULT ";

/** Reads a `/proc/<pid>/status` field in kB (VmRSS, VmHWM); undefined once the process is gone. */
export function procStatusKb(pid: number | "self", field: "VmRSS" | "VmHWM"): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
