import type { JobItem } from "../jobs/jobs.ts";
import { previewRestoreRunner } from "./previews.ts";
import { overwriteRunner } from "./promote.ts";
import type { JobRunner } from "./runner.ts";

/**
 * `project.restore`: into a preview (the job names one: previews.ts restores it there) or over the
 * project's own database (no preview: promote.ts's overwrite, a safety backup and a swap).
 */
const pick = (job: JobItem): JobRunner => (job.preview_database_id ? previewRestoreRunner : overwriteRunner);

export const restoreRunner: JobRunner = {
  noun: "restore",
  attempt: (a) => pick(a.job).attempt(a),
  settle: async (deps, job) => pick(job).settle?.(deps, job),
  abandoned: async (deps, job, o) => pick(job).abandoned?.(deps, job, o),
  measure: async (deps, job) => pick(job).measure?.(deps, job) ?? 0,
};
