import type { Deps } from "../deps.ts";
import {
  getExport,
  markExportCompleted,
  markExportFailed,
  markExportPending,
  markExportRunning,
  recordExportUpload,
  updateExportArtifact,
  type ExportItem,
} from "../exports/exports.ts";
import { completeJob, type JobItem } from "../jobs/jobs.ts";
import { releaseLock } from "../jobs/locks.ts";
import { getClusterConnection, getProject } from "../orgs/orgs.ts";
import { databaseSize } from "./backup.ts";
import { WorkerFailure } from "../pg/classify.ts";
import { abortUpload, deleteArtifact } from "../aws/artifacts.ts";
import { dumpForJob } from "./dump-job.ts";
import { ignored, lockOwner, lockResource, toRunReport, type Attempt, type JobRunner, type RunOutcome } from "./runner.ts";

/**
 * `project.export`: the backup's dump pipeline (one exported snapshot, pg_dump streamed through
 * SHA-256 into a multipart upload, no temporary file) into the export's own key. Unlike a backup
 * it is not restored to verify it: it is the customer's copy, and the customer checks the size and
 * SHA-256 the download answers with. Claim, lock (the same database lock as backups, so a database
 * is never dumped twice at once), heartbeat and retries are the shared lifecycle's.
 */
export const exportRunner: JobRunner = {
  noun: "export",
  attempt,
  settle: settleExport,
  abandoned: settleExport,
  // Above the threshold the export runs as a task (offload.ts), like a backup.
  measure: (deps, job) => databaseSize(deps, job.cluster_id, job.database_name),
};

async function attempt(a: Attempt): Promise<RunOutcome> {
  const { deps, job } = a;
  let exp: ExportItem | undefined;
  let uploaded = false;
  a.onFailure(async ({ retrying, error }) => {
    if (!exp) return;
    if (uploaded) await deleteArtifact(deps.s3, deps.bucket, exp.export_key).catch(() => undefined);
    if (retrying) await markExportPending(deps, exp, error);
    else await markExportFailed(deps, exp, error);
  });

  if (!job.export_id) throw new WorkerFailure("permanent", "The job names no export to make.");
  exp = await getExport(deps, job.project_id, job.export_id);
  if (!exp) throw new WorkerFailure("permanent", "The export record no longer exists.");
  const project = await getProject(deps, job.project_id);
  if (!project) throw new WorkerFailure("permanent", "The project no longer exists.");
  // A previous attempt that died mid-upload left its parts behind: abort them.
  await abortUpload(deps.s3, deps.bucket, exp.export_key, exp.upload_id);
  const running = await markExportRunning(deps, exp);
  if (!running) throw new WorkerFailure("permanent", "The export was already settled.");
  exp = running;
  const conn = await getClusterConnection(deps, project.cluster_id);
  a.secrets.push(conn.password);

  const current = exp;
  const { dump, artifact } = await dumpForJob(a, {
    key: exp.export_key,
    conn,
    database: project.database_name,
    countRows: false,
    onUploadId: async (uploadId) => void (await recordExportUpload(deps, current, uploadId)),
    metadata: { "export-id": exp.id, "project-id": exp.project_id },
  });
  uploaded = true;
  // Recorded before the job completes, so that a delivery repairing a completion lost after the
  // job's transition (settleExport) finds the size and checksum on the export.
  const recorded = await updateExportArtifact(deps, exp, artifact);
  if (!recorded) throw new WorkerFailure("permanent", "The export was settled while it was being written.");
  exp = recorded;

  // The job's transition is the fence: only the claim's owner settles the export.
  const done = await completeJob(deps, job, toRunReport(dump.report));
  if (!done) return ignored("the claim was lost before completion");
  try {
    await markExportCompleted(deps, exp);
  } catch (err) {
    // The job is completed: no failure of the attempt. The message is kept, and its next delivery
    // brings the export in line (settleExport).
    deps.log.warn("job completed but its export is not settled yet; the next delivery settles it", { job_id: job.id, export_id: exp.id, error: String(err) });
    return { status: "completed", ack: !a.msg, reason: "export not settled yet" };
  }
  deps.log.info("export completed", { job_id: job.id, export_id: exp.id, attempt: job.attempts, size_bytes: dump.sizeBytes, dump_ms: dump.dumpMs });
  return { status: "completed", ack: true };
}

/**
 * Brings the export in line with its finished job: a worker may have died right after the job's
 * transition, or on its last attempt (the job was then failed for it). A failed export keeps
 * nothing in storage.
 */
async function settleExport(deps: Deps, job: JobItem): Promise<void> {
  if (!job.export_id) return;
  const exp = await getExport(deps, job.project_id, job.export_id);
  if (!exp || (exp.state !== "pending" && exp.state !== "running")) return;
  if (job.state === "completed" && exp.sha256) {
    await markExportCompleted(deps, exp);
  } else {
    await abortUpload(deps.s3, deps.bucket, exp.export_key, exp.upload_id);
    await deleteArtifact(deps.s3, deps.bucket, exp.export_key).catch(() => undefined);
    await markExportFailed(deps, exp, job.error ?? "The export job failed.");
  }
  await releaseLock(deps, lockResource(job), lockOwner(job));
}
