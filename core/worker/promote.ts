import { auditItem } from "../audit/audit.ts";
import { backupObjectKey, getBackup } from "../backups/backups.ts";
import { iso, type Deps } from "../deps.ts";
import { outboxPut, restoreCompletedEvent } from "../events/outbox.ts";
import { completeJob, getJobItem, recordJobProgress, releaseClaim, type JobItem } from "../jobs/jobs.ts";
import type { ClusterConnection } from "../pg/pgconn.ts";
import { getClusterConnection, getProject, type Project } from "../orgs/orgs.ts";
import { createPreviewDatabase, dropPreview, dropPreviewDatabase, ensurePreviewRole, previewConnection } from "../previews/database.ts";
import {
  advancePromotion,
  createParkedPreview,
  dropParkedRecord,
  getPromotion,
  markParkedReady,
  notePromotion,
  promotionDoneItem,
  promotionSecret,
  requestSafetyBackup,
  retirePromotedPreview,
  type PromotionItem,
} from "../promote/promote.ts";
import {
  adoptIncoming,
  allowConnectionsTo,
  existingDatabases,
  inspectDatabase,
  openParkedToItsRole,
  retireIncomingRole,
  swapDatabases,
  swapState,
  type SwapPlan,
} from "../promote/swap.ts";
import { tail } from "../redact.ts";
import { WorkerFailure } from "../pg/classify.ts";
import { ignored, requeue, type Attempt, type JobRunner, type RunOutcome } from "./runner.ts";
import { getPitrRequest, type PitrRequestItem } from "../restores/pitr.ts";
import { pitrJobSize } from "../restores/pitr.ts";
import { restoreDatabaseToTime } from "../wal/recover.ts";
import { jitter } from "./options.ts";
import { pickRestoreTools } from "../pg/pgtools.ts";
import { restoreInto } from "../pg/verify.ts";

/**
 * The worker's side of a promote and of an overwrite restore (core/promote/promote.ts describes
 * the phases). The job holds the project database's lock while it works; while its safety backup
 * runs (a job of its own, which needs that lock) it gives its claim back and looks again a few
 * seconds later, without spending an attempt.
 */
const permanent = (message: string) => new WorkerFailure("permanent", message);
const line = (deps: Pick<Deps, "now">, text: string) => `${iso(deps.now())} ${text}`;

function planOf(p: PromotionItem): SwapPlan {
  return {
    project: p.project_database,
    incoming: p.incoming_database,
    incomingRole: p.incoming_role,
    parked: p.parked_database,
    parkedRole: p.parked_database,
    projectRole: p.project_role ?? "",
    projectAcl: p.project_acl,
  };
}

async function attempt(a: Attempt): Promise<RunOutcome> {
  const { deps, job, o } = a;
  let p = await getPromotion(deps, job.id);
  if (!p) throw permanent("The job's promotion record is missing.");
  const project = await getProject(deps, job.project_id);
  if (!project) throw permanent("The project no longer exists.");
  const cluster = await getClusterConnection(deps, p.cluster_id);
  a.secrets.push(cluster.password);
  a.onFailure(async ({ retrying, error }) => {
    if (!retrying) await cleanUpFailed(deps, (await getPromotion(deps, job.id)) ?? p!, cluster, error);
  });
  const hook = async (phase: Parameters<NonNullable<NonNullable<typeof o.hooks>["onPromotePhase"]>>[1]) => o.hooks?.onPromotePhase?.(job.id, phase);
  /** Shows the phases on the job; refused when this attempt no longer owns it. */
  const show = async (q: PromotionItem) => {
    if (!(await recordJobProgress(deps, job, { last_stdout: tail(q.progress.join("\n"), 4096) }))) {
      a.abort(`a newer attempt than ${job.attempts} owns the job`);
      throw new WorkerFailure("transient", "The attempt was superseded by a newer one.");
    }
  };

  if (p.phase === "restore") {
    p = await restorePhase(a, p, project, cluster, hook);
    await show(p);
  }
  if (p.phase === "safety_backup") {
    if (!p.safety_job_id) {
      p = await requestSafetyBackup(deps, project, p, job);
      await show(p);
      await hook("safety_backup_requested");
    }
    const backup = await getBackup(deps, project.id, p.safety_backup_id);
    const backupJob = p.safety_job_id ? await getJobItem(deps, p.safety_job_id) : undefined;
    if (backup?.state === "completed" && backup.verification_state === "verified") {
      p = await advancePromotion(deps, p, "swap", {}, line(deps, `safety backup ${backup.id} verified (${backup.size_bytes} bytes)`));
      await show(p);
    } else if (backup?.state === "failed" || backup?.state === "expired" || backupJob?.state === "failed") {
      const why = backup?.verification_error ?? backupJob?.error ?? backup?.state ?? "unknown";
      throw permanent(`The safety backup ${p.safety_backup_id} failed (${why}): the project's database was not changed.`);
    } else {
      return waitForSafetyBackup(a, p);
    }
  }
  if (p.phase === "swap") {
    p = await swapPhase(a, p, cluster, hook);
    await show(p);
    await hook("swapped");
  }
  if (p.phase === "finish") return finish(a, p, project, cluster);
  return ignored(`the promotion is already ${p.phase}`);
}

/** The safety backup is still pending or running: give the claim back (attempt not spent) and look again shortly. */
async function waitForSafetyBackup(a: Attempt, p: PromotionItem): Promise<RunOutcome> {
  const { deps, job, o } = a;
  const delay = jitter(Math.min(10, o.lockBusyDelaySeconds));
  const released = await releaseClaim(deps, job, new Date(deps.now().getTime() + delay * 1000));
  if (!released) return ignored("the claim was lost while waiting for the safety backup");
  deps.log.info("waiting for the safety backup", { job_id: job.id, backup_id: p.safety_backup_id, backup_job_id: p.safety_job_id, retry_in_seconds: delay });
  return { status: "busy", ack: await requeue(deps, job.id, delay, a.msg), reason: "waiting for the safety backup" };
}

/** Overwrite restores: the backup into the hidden database, as its own role, row counts checked. Always from an empty database. */
async function restorePhase(
  a: Attempt,
  p: PromotionItem,
  project: Project,
  cluster: ClusterConnection,
  hook: (phase: "restore") => Promise<void>,
): Promise<PromotionItem> {
  const { deps, job, signal } = a;
  if (!p.source_backup_id && p.incoming_password_sealed) {
    const pitr = await getPitrRequest(deps, job.id);
    if (pitr) return pitrRestorePhase(a, p, project, cluster, hook, pitr);
  }
  if (!p.source_backup_id || !p.incoming_password_sealed) throw permanent("The restore names no backup.");
  const backup = await getBackup(deps, project.id, p.source_backup_id);
  if (backup?.state !== "completed" || !backup.row_counts || !backup.pg_dump_version) {
    throw permanent(`The backup ${p.source_backup_id} has no complete file to restore (it is ${backup?.state ?? "gone"}).`);
  }
  const tools = await pickRestoreTools(backup.pg_dump_version, deps.pgBinDirs);
  const password = promotionSecret(deps, p.incoming_password_sealed);
  a.secrets.push(password);
  await ensurePreviewRole(cluster, p.incoming_role, password);
  await dropPreviewDatabase(cluster, p.incoming_database);
  await createPreviewDatabase(cluster, p.incoming_database, p.incoming_role, project.database_name);
  await hook("restore");
  const restored = await restoreInto({
    s3: deps.s3,
    bucket: deps.bucket,
    key: backup.backup_key,
    expectedSha256: backup.sha256 ?? "",
    expectedRowCounts: backup.row_counts,
    conn: previewConnection(cluster, p.incoming_role, password),
    database: p.incoming_database,
    tools,
    signal,
    what: "restore",
    failed: (message, report, cause) => new WorkerFailure("permanent", message, { report, cause }),
  });
  deps.log.info("restored for an overwrite", { job_id: job.id, backup_id: backup.id, restore_ms: restored.restoreMs });
  const tables = Object.keys(backup.row_counts).length;
  return advancePromotion(
    deps,
    p,
    "safety_backup",
    {},
    line(deps, `backup ${backup.id} restored into a hidden database and checked (${tables} tables' row counts)`),
  );
}

/** Point-in-time overwrites: the project's database as it was at the time, out of a recovery instance, into the hidden database. */
async function pitrRestorePhase(
  a: Attempt,
  p: PromotionItem,
  project: Project,
  cluster: ClusterConnection,
  hook: (phase: "restore") => Promise<void>,
  pitr: PitrRequestItem,
): Promise<PromotionItem> {
  const { deps, job, signal } = a;
  const password = promotionSecret(deps, p.incoming_password_sealed!);
  a.secrets.push(password);
  await ensurePreviewRole(cluster, p.incoming_role, password);
  await dropPreviewDatabase(cluster, p.incoming_database);
  await createPreviewDatabase(cluster, p.incoming_database, p.incoming_role, project.database_name);
  await hook("restore");
  const restored = await restoreDatabaseToTime({
    deps,
    clusterId: p.cluster_id,
    cluster,
    database: project.database_name,
    time: new Date(pitr.restore_time),
    restorePointName: pitr.wal_restore_point ?? undefined,
    archiveWaitSeconds: a.o.pitrArchiveWaitSeconds,
    into: previewConnection(cluster, p.incoming_role, password),
    intoDatabase: p.incoming_database,
    signal,
    progress: (text) => deps.log.info("point-in-time restore", { job_id: job.id, progress: text }),
  });
  deps.log.info("restored to a point in time for an overwrite", {
    job_id: job.id,
    restore_time: pitr.restore_time,
    base_backup_id: restored.baseBackupId,
    ...restored.timings,
  });
  const tables = Object.keys(restored.rowCounts).length;
  return advancePromotion(
    deps,
    p,
    "safety_backup",
    {},
    line(
      deps,
      `${project.database_name} as of ${pitr.restore_time} restored into a hidden database (replay stopped ${restored.stoppedAt ?? "at the target"}) and checked (${tables} tables' row counts)`,
    ),
  );
}

/** The cutover. The plan (the project database's owner and grants) is read once, before anything is renamed. */
async function swapPhase(a: Attempt, p: PromotionItem, cluster: ClusterConnection, hook: (phase: "rename") => Promise<void>): Promise<PromotionItem> {
  const { deps, signal } = a;
  if (!p.plan_recorded) {
    const state = await swapState(cluster, planOf(p));
    if (state !== "before") {
      throw permanent(
        `Cannot promote: the databases ${p.project_database} and ${p.incoming_database} are not both on the cluster any more (was the preview deleted?). The project's database was not changed.`,
      );
    }
    const info = await inspectDatabase(cluster, p.project_database);
    if (!info) throw permanent(`The project's database ${p.project_database} does not exist.`);
    p = await notePromotion(deps, p, { project_role: info.owner, project_acl: info.acl, plan_recorded: true });
  }
  const plan = planOf(p);
  const state = await swapState(cluster, plan);
  if (state === "unknown") {
    throw permanent(
      `Cannot promote: expected the databases ${p.project_database} and ${p.incoming_database} on the cluster (was the preview deleted?). The project's database was not changed.`,
    );
  }
  const parkedPassword = promotionSecret(deps, p.parked_password_sealed);
  a.secrets.push(parkedPassword);
  await ensurePreviewRole(cluster, plan.parkedRole, parkedPassword);
  await createParkedPreview(deps, p);
  if (state !== "swapped") await adoptIncoming(cluster, plan);
  if (signal.aborted) throw new WorkerFailure("transient", "The promote was interrupted before the swap.");
  await swapDatabases(cluster, plan, { beforeRename: () => hook("rename") });
  return advancePromotion(
    deps,
    p,
    "finish",
    {},
    line(deps, `swapped: ${p.project_database} now holds the new data; the old data is kept as preview ${p.parked_preview_id} (${p.parked_name})`),
  );
}

/** After the swap: the parked preview opened to its role and ready, the incoming role dropped, the job completed. */
async function finish(a: Attempt, p: PromotionItem, project: Project, cluster: ClusterConnection): Promise<RunOutcome> {
  const { deps, job } = a;
  const plan = planOf(p);
  await openParkedToItsRole(cluster, plan);
  await retireIncomingRole(cluster, plan);
  await finishRecords(deps, p);
  const done = line(deps, `done: undo by promoting preview ${p.parked_preview_id} (${p.parked_name}) before it expires in 24 hours`);
  const ids = {
    job_id: job.id,
    safety_backup_id: p.safety_backup_id,
    pre_promote_preview_id: p.parked_preview_id,
    preview_id: p.incoming_preview_id,
    backup_id: p.source_backup_id,
    requested_by_actor_kind: p.requested_by_actor_kind,
    requested_by_actor_id: p.requested_by_actor_id,
  };
  const pitr = p.kind === "restore_overwrite" && !p.source_backup_id ? await getPitrRequest(deps, job.id) : undefined;
  const also = [
    promotionDoneItem(deps, p, done),
    auditItem(deps, {
      organization_id: project.organization_id,
      project_id: project.id,
      action: p.kind === "promote_preview" ? "preview.promoted" : "project.restore_overwritten",
      actor: { kind: "system", id: job.id },
      target_type: p.kind === "promote_preview" ? "preview" : "project",
      target_id: p.incoming_preview_id ?? project.id,
      metadata: { ...ids, ...(pitr ? { restore_time: pitr.restore_time } : {}) },
    }),
  ];
  if (p.kind === "restore_overwrite") {
    also.push(
      outboxPut(
        deps,
        restoreCompletedEvent(
          {
            organization_id: project.organization_id,
            project_id: project.id,
            job_id: job.id,
            backup_id: p.source_backup_id,
            backup_key: p.source_backup_id && backupObjectKey(project.id, p.source_backup_id),
            target_kind: "project",
            preview_id: null,
            database_name: project.database_name,
            completed_at: iso(deps.now()),
          },
          {
            safety_backup_id: p.safety_backup_id,
            pre_promote_preview_id: p.parked_preview_id,
            ...(pitr ? { source_kind: "pitr", restore_time: pitr.restore_time } : {}),
          },
        ),
      ),
    );
  }
  const completed = await completeJob(deps, job, { last_stdout: tail([...p.progress, done].join("\n"), 4096), last_stderr: null, last_exit_code: null }, also);
  if (!completed) return ignored("the claim was lost before completion");
  deps.log.info(p.kind === "promote_preview" ? "preview promoted" : "project restored from a backup", { project_id: project.id, ...ids });
  return { status: "completed", ack: true };
}

/** The records the cutover changes: the parked preview ready, the promoted one deleted. Idempotent. */
async function finishRecords(deps: Deps, p: PromotionItem): Promise<void> {
  await markParkedReady(deps, p);
  if (p.incoming_preview_id) await retirePromotedPreview(deps, p.incoming_preview_id, p.job_id);
}

/**
 * The job failed for good. Before the rename nothing of the project changed: connections are
 * allowed again (a killed attempt may have left them refused), the hidden database and the parked
 * role go. After it (the cutover happened, a later step failed) the old data stays reachable as
 * the parked preview.
 */
async function cleanUpFailed(deps: Deps, p: PromotionItem, cluster: ClusterConnection, error: string): Promise<void> {
  const names = await existingDatabases(cluster, [p.project_database, p.incoming_database, p.parked_database]);
  if (names.has(p.project_database) && names.has(p.parked_database) && !names.has(p.incoming_database)) {
    await allowConnectionsTo(cluster, [p.project_database, p.parked_database]);
    await openParkedToItsRole(cluster, planOf(p)).catch(() => undefined);
    await finishRecords(deps, p);
    return;
  }
  if (!names.has(p.project_database) || names.has(p.parked_database)) {
    deps.log.error("promote failed in a state it cannot clean up alone; an operator must look", { job_id: p.job_id, databases: [...names] });
    return;
  }
  await allowConnectionsTo(cluster, [p.project_database, p.incoming_database]);
  if (p.kind === "restore_overwrite") await dropPreview(cluster, p.incoming_database, p.incoming_role);
  await dropPreview(cluster, p.parked_database, p.parked_database);
  await dropParkedRecord(deps, p, `The promote failed before the swap: ${error}`);
}

/** A delivery of a finished job, or its last attempt died: make sure a failure is cleaned up. */
async function settle(deps: Deps, job: JobItem): Promise<void> {
  if (job.state !== "failed") return;
  const p = await getPromotion(deps, job.id);
  if (!p || p.phase === "done") return;
  const cluster = await getClusterConnection(deps, p.cluster_id);
  await cleanUpFailed(deps, p, cluster, job.error ?? "the job failed");
}

/** `project.promote_preview`. Not measured: it moves no data itself (its safety backup is a job of its own, measured as backups are). */
export const promoteRunner: JobRunner = { noun: "promote", attempt, settle, abandoned: (deps, job) => settle(deps, job) };

/** `project.restore` into the project (no preview): the restore moves the backup's artifact, so it is measured like a restore. */
export const overwriteRunner: JobRunner = {
  noun: "restore",
  attempt,
  settle,
  abandoned: (deps, job) => settle(deps, job),
  measure: async (deps, job) =>
    job.backup_id ? ((await getBackup(deps, job.project_id, job.backup_id))?.size_bytes ?? 0) : ((await pitrJobSize(deps, job)) ?? 0),
};
