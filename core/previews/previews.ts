import { randomBytes } from "node:crypto";
import { z } from "../zod.ts";
import { DEFAULT_TTL_HOURS, previewModes, previewSchema, previewSourceKinds, previewStates } from "../contract/previews.ts";
import { keys } from "../db/keys.ts";
import { backupObjectKey } from "../backups/backups.ts";
import { decodeCursor, getItem, queryAll, queryPage, setFields, transactWrite, transactWriteIf, updateItem, type Page } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { outboxPut, previewDeletedEvent, previewReadyEvent, restoreCompletedEvent, type EventSpec } from "../events/outbox.ts";
import { newId } from "../ids.ts";
import { getJobItem, newJobItem, type JobItem, type JobType } from "../jobs/jobs.ts";
import { enqueueCommitted } from "../jobs/queue.ts";
import { confirmCommitted, jobFromRecord } from "../jobs/request.ts";
import { open, seal } from "../orgs/secretbox.ts";
import { getCluster, PROJECT_DEFAULTS, type Cluster, type Project } from "../orgs/orgs.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

export type PreviewState = (typeof previewStates)[number];
export type PreviewSourceKind = (typeof previewSourceKinds)[number];

export type Preview = z.infer<typeof previewSchema>;

/**
 * What the preview's current job is asked to do. The worker acts only while the preview still
 * names its job (`job_id`): a later request (delete, reset) supersedes an earlier one.
 */
export const previewActions = ["create", "reset", "restore", "delete"] as const;
export type PreviewAction = (typeof previewActions)[number];

/**
 * The stored preview. It keeps the names it was first stored under (`expires_at`, `error`,
 * `source_backup_id`: the expiry index and the worker's conditions use them); `toPreview` answers
 * the clients' names. Fields added later (the source's kind, database and time) read with
 * defaults, so older items stay valid.
 */
export const previewItem = z.object({
  item_type: z.literal("preview"),
  id: z.string(),
  organization_id: z.string(),
  project_id: z.string(),
  name: z.string(),
  mode: z.enum(previewModes),
  state: z.enum(previewStates),
  database_name: z.string(),
  source_backup_id: z.string().nullable(),
  /** Absent on older items: they came from their backup, or from nothing. */
  source_kind: z.enum(previewSourceKinds).optional(),
  source_database: z.string().nullable().default(null),
  source_restore_time: z.string().nullable().default(null),
  error: z.string().nullable(),
  expires_at: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
  cluster_id: z.string(),
  /** The login role that owns the database; the same name as the database. */
  role_name: z.string(),
  /** The role's password, sealed with the service key like cluster passwords. */
  password_sealed: z.string(),
  job_id: z.string(),
  action: z.enum(previewActions),
  /** The backup the current action restores (null: an empty database). */
  action_backup_id: z.string().nullable(),
  /** Restore into this preview: drop and recreate its database first (else its objects are dropped in place). */
  action_recreate: z.boolean(),
  /** The action has begun writing into the database (a retry starts from an empty one). */
  action_started: z.boolean(),
  /** Counted against the project's live-preview limit. */
  counted: z.boolean(),
});
export type PreviewItem = z.input<typeof previewItem>;

/**
 * The API's view of a preview: the clients' names, and the connection facts of its cluster
 * (`cluster`: host, port, sslmode, pooler).
 */
export function toPreview(p: PreviewItem, cluster: Pick<Cluster, "host" | "port" | "sslmode" | "public_host" | "pooler_port"> | undefined): Preview {
  const item = previewItem.parse(p);
  const port = cluster?.port ?? PROJECT_DEFAULTS.port;
  return previewSchema.parse({
    ...item,
    direct_port: port,
    pooled_port: cluster?.pooler_port ?? port,
    public_host: cluster?.public_host ?? cluster?.host ?? "",
    ssl_mode: cluster?.sslmode ?? null,
    source_kind: item.source_kind ?? (item.source_backup_id ? "backup" : "empty"),
    source_backup_key: item.source_backup_id ? backupObjectKey(item.project_id, item.source_backup_id) : null,
    last_error: item.error,
    ttl_expires_at: item.expires_at,
  });
}

/** Previews as the API shows them (one cluster read per distinct cluster). */
export async function previewViews(deps: Db, previews: PreviewItem[]): Promise<Preview[]> {
  const clusters = new Map<string, Promise<Cluster | undefined>>();
  return Promise.all(
    previews.map(async (p) => {
      let c = clusters.get(p.cluster_id);
      if (!c) clusters.set(p.cluster_id, (c = getCluster(deps, p.cluster_id)));
      return toPreview(p, await c);
    }),
  );
}

export const previewView = async (deps: Db, preview: PreviewItem): Promise<Preview> => (await previewViews(deps, [preview]))[0]!;

/** `capydb_pvw_<ulid>`: the database and its role, deterministic from the id (well under 63 bytes). */
export const previewDatabaseName = (previewId: string) => `capydb_pvw_${previewId.replace(/^pvw_/, "")}`;

export const DEFAULT_PREVIEW_LIMIT = 5;

const liveStates: PreviewState[] = ["provisioning", "ready", "resetting", "failed"];
export const isLive = (p: Pick<Preview, "state">) => liveStates.includes(p.state);

/** Index attributes: live previews are in the expiry index the dispatcher reads. */
function expiryIndex(p: Pick<PreviewItem, "id" | "state" | "expires_at">): { gsi2pk: string | undefined; gsi2sk: string | undefined } {
  return isLive(p) ? { gsi2pk: keys.previewExpiryIndex, gsi2sk: `${p.expires_at}#${p.id}` } : { gsi2pk: undefined, gsi2sk: undefined };
}

export async function getPreview(deps: Db, id: string): Promise<PreviewItem | undefined> {
  if (!/^pvw_[0-9a-z]{26}$/.test(id)) return undefined;
  return getItem(deps, previewItem, keys.preview(id));
}

/** Newest first; deleted previews are listed too (their state says so) so a deletion can be followed. */
export async function listPreviews(deps: Db, projectId: string, limit: number, cursor?: string): Promise<Page<PreviewItem>> {
  return queryPage(deps, previewItem, {
    IndexName: "gsi1",
    KeyConditionExpression: "gsi1pk = :p",
    ExpressionAttributeValues: { ":p": keys.projectPreviewsIndex(projectId) },
    ScanIndexForward: false,
    Limit: limit,
    ExclusiveStartKey: decodeCursor(cursor),
  });
}

const jobTypeOf: Record<Exclude<PreviewAction, "delete">, JobType> = { create: "branch.create", reset: "branch.create", restore: "project.restore" };

function previewJob(project: Project, preview: Pick<PreviewItem, "id" | "database_name" | "cluster_id">, type: JobType, backupId: string | null, now: Date) {
  return newJobItem(now, {
    id: newId("job", now),
    organization_id: project.organization_id,
    project_id: project.id,
    cluster_id: preview.cluster_id,
    // The job locks the preview's database: two jobs never write into one preview at once.
    database_name: preview.database_name,
    type,
    backup_id: backupId,
    preview_database_id: preview.id,
  });
}

type Writer = Db & Pick<Deps, "sqs" | "queueUrl" | "log" | "secretKey" | "previewLimit">;

/** More writes for the transaction that creates a job (a point-in-time restore's target), given the job's id. */
export type AlsoWrites = (jobId: string) => Parameters<typeof transactWrite>[1];

/** The source fields of a preview that now holds `backupId`'s data (or nothing, or what `source` says). */
function previewSource(project: Project, backupId: string | null, source?: { kind: PreviewSourceKind; restore_time: string | null }) {
  const kind: PreviewSourceKind = source?.kind ?? (backupId ? "backup" : "empty");
  return {
    source_kind: kind,
    source_database: kind === "empty" ? null : project.database_name,
    source_restore_time: source?.restore_time ?? null,
  };
}

/**
 * Creates a preview (`provisioning`) and the job that provisions it, in one transaction with the
 * project's live-preview counter: at most `previewLimit` live previews, even under concurrent
 * requests. `backupId` set: the job restores that backup into it (mode clone).
 */
export async function createPreview(
  deps: Writer,
  project: Project,
  input: {
    name?: string;
    mode: "empty" | "clone";
    ttl_hours?: number;
    backupId: string | null;
    jobType: JobType;
    also?: AlsoWrites;
    /** Where the data comes from when it is not `backupId` (a point-in-time restore says `pitr` and the time). */
    source?: { kind: PreviewSourceKind; restore_time: string | null };
  },
): Promise<{ preview: PreviewItem; job: JobItem }> {
  const now = deps.now();
  const at = iso(now);
  const id = newId("preview", now);
  const database = previewDatabaseName(id);
  const limit = deps.previewLimit ?? DEFAULT_PREVIEW_LIMIT;
  if (!(await getCluster(deps, project.cluster_id))) throw new AppError("not_found", `the project's cluster ${project.cluster_id} does not exist`);
  const password = randomBytes(24).toString("base64url");
  const expires = new Date(now.getTime() + (input.ttl_hours ?? DEFAULT_TTL_HOURS) * 3600_000);
  const job = previewJob(project, { id, database_name: database, cluster_id: project.cluster_id }, input.jobType, input.backupId, now);
  const preview: PreviewItem = {
    item_type: "preview",
    id,
    organization_id: project.organization_id,
    project_id: project.id,
    name: input.name ?? database,
    mode: input.mode,
    state: "provisioning",
    database_name: database,
    source_backup_id: input.backupId,
    ...previewSource(project, input.backupId, input.source),
    error: null,
    expires_at: iso(expires),
    created_at: at,
    updated_at: at,
    cluster_id: project.cluster_id,
    role_name: database,
    password_sealed: seal(deps.secretKey, password),
    job_id: job.id,
    action: input.jobType === "project.restore" ? "restore" : "create",
    action_backup_id: input.backupId,
    action_recreate: false,
    action_started: false,
    counted: true,
  };
  await confirmCommitted(
    deps,
    job.id,
    () =>
      transactWrite(
        deps,
        [
          {
            Update: {
              TableName: deps.table,
              Key: keys.livePreviews(project.id),
              UpdateExpression: "ADD live :one",
              ConditionExpression: "attribute_not_exists(live) OR live < :max",
              ExpressionAttributeValues: { ":one": 1, ":max": limit },
            },
          },
          {
            Put: {
              TableName: deps.table,
              Item: { ...keys.preview(id), gsi1pk: keys.projectPreviewsIndex(project.id), gsi1sk: id, ...expiryIndex(preview), ...preview },
            },
          },
          { Put: { TableName: deps.table, Item: job } },
          ...(input.also?.(job.id) ?? []),
        ],
        `the project already has ${limit} live preview databases (the limit): delete one first`,
      ),
    undefined,
  );
  await enqueueCommitted(deps, job.id);
  return { preview, job: jobFromRecord(job) };
}

/** Transitions of a preview by the API: conditional on the state read, so concurrent requests conflict (409). */
async function startAction(
  deps: Writer,
  project: Project,
  preview: PreviewItem,
  action: PreviewAction,
  opts: {
    backupId: string | null;
    recreate?: boolean;
    state: PreviewState;
    jobType: JobType;
    mode?: Preview["mode"];
    also?: AlsoWrites;
    source?: { kind: PreviewSourceKind; restore_time: string | null };
  },
): Promise<{ preview: PreviewItem; job: JobItem }> {
  const promoting = await promotionOf(deps, project.id, preview.id);
  const now = deps.now();
  const job = previewJob(project, preview, opts.jobType, opts.backupId, now);
  const next: PreviewItem = {
    ...preview,
    state: opts.state,
    mode: opts.mode ?? preview.mode,
    source_backup_id: action === "delete" ? preview.source_backup_id : opts.backupId,
    ...(action === "delete"
      ? { source_kind: preview.source_kind, source_database: preview.source_database, source_restore_time: preview.source_restore_time }
      : previewSource(project, opts.backupId, opts.source)),
    error: null,
    updated_at: iso(now),
    job_id: job.id,
    action,
    action_backup_id: opts.backupId,
    action_recreate: Boolean(opts.recreate),
    action_started: false,
    counted: action === "delete" ? false : preview.counted,
  };
  const set = setFields({
    state: next.state,
    mode: next.mode,
    source_backup_id: next.source_backup_id,
    source_kind: next.source_kind,
    source_database: next.source_database ?? null,
    source_restore_time: next.source_restore_time ?? null,
    error: null,
    updated_at: next.updated_at,
    job_id: next.job_id,
    action,
    action_backup_id: next.action_backup_id,
    action_recreate: next.action_recreate,
    action_started: false,
    counted: next.counted,
    ...expiryIndex(next),
  });
  const writes: Parameters<typeof transactWrite>[1] = [
    {
      Update: {
        TableName: deps.table,
        Key: keys.preview(preview.id),
        ...set,
        UpdateExpression: set.UpdateExpression!,
        ConditionExpression: "#state = :was AND job_id = :job",
        ExpressionAttributeNames: { ...set.ExpressionAttributeNames, "#state": "state" },
        ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":was": preview.state, ":job": preview.job_id },
      },
    },
    { Put: { TableName: deps.table, Item: job } },
    // A promote of this preview accepted meanwhile names its job in the project's guard.
    {
      ConditionCheck: {
        TableName: deps.table,
        Key: keys.promoteGuard(project.id),
        ConditionExpression: promoting.guardJobId ? "job_id = :guard" : "attribute_not_exists(pk)",
        ...(promoting.guardJobId ? { ExpressionAttributeValues: { ":guard": promoting.guardJobId } } : {}),
      },
    },
    ...(opts.also?.(job.id) ?? []),
  ];
  if (preview.counted && !next.counted) {
    writes.push({
      Update: {
        TableName: deps.table,
        Key: keys.livePreviews(project.id),
        UpdateExpression: "ADD live :minus",
        ConditionExpression: "live > :zero",
        ExpressionAttributeValues: { ":minus": -1, ":zero": 0 },
      },
    });
  }
  await confirmCommitted(deps, job.id, () => transactWrite(deps, writes, `preview ${preview.id} changed while this request was made: try again`), undefined);
  await enqueueCommitted(deps, job.id);
  return { preview: next, job: jobFromRecord(job) };
}

const guardItem = z.object({ job_id: z.string() });

/**
 * The project's promote guard (the job of its promote or overwrite restore in progress, if any):
 * a 409 when that job is promoting this very preview and has not finished, since deleting,
 * resetting or restoring into the preview would pull the data from under it. `guardJobId` is what
 * the guard named, for the transaction's check that no promote was accepted since.
 */
async function promotionOf(deps: Db, projectId: string, previewId: string): Promise<{ guardJobId: string | undefined }> {
  const guard = await getItem(deps, guardItem, keys.promoteGuard(projectId));
  if (!guard) return { guardJobId: undefined };
  const job = await getJobItem(deps, guard.job_id);
  if (job && job.preview_database_id === previewId && (job.state === "pending" || job.state === "running")) {
    throw new AppError("conflict", `preview ${previewId} is being promoted by job ${job.id}: wait until it finishes (capydb jobs get ${job.id} --wait)`);
  }
  return { guardJobId: guard.job_id };
}

/** Deletes a preview (any state but deleting/deleted): the job drops its database and role. */
export async function requestPreviewDelete(deps: Writer, project: Project, preview: PreviewItem) {
  if (preview.state === "deleting" || preview.state === "deleted") {
    throw new AppError("conflict", `preview ${preview.id} is already ${preview.state}`);
  }
  return startAction(deps, project, preview, "delete", { backupId: null, state: "deleting", jobType: "instance.destroy" });
}

/** Only a settled preview (ready or failed) takes a new data action. */
function requireSettled(preview: PreviewItem, what: string) {
  if (preview.state !== "ready" && preview.state !== "failed") {
    throw new AppError("conflict", `preview ${preview.id} is ${preview.state}: wait until it is ready (or delete it) before you ${what}`);
  }
}

/** Empties the preview again, or re-clones it from `backupId` (the project's newest verified backup). */
export async function requestPreviewReset(deps: Writer, project: Project, preview: PreviewItem, backupId: string | null) {
  requireSettled(preview, "reset it");
  return startAction(deps, project, preview, "reset", { backupId, state: "resetting", jobType: jobTypeOf.reset });
}

/** Restores `backupId` into an existing preview (`recreate`: drop what it holds first). */
export async function requestRestoreIntoPreview(
  deps: Writer,
  project: Project,
  preview: PreviewItem,
  backupId: string | null,
  recreate: boolean,
  also?: AlsoWrites,
  source?: { kind: PreviewSourceKind; restore_time: string | null },
) {
  requireSettled(preview, "restore into it");
  return startAction(deps, project, preview, "restore", { backupId, recreate, state: "resetting", jobType: jobTypeOf.restore, mode: "clone", also, source });
}

/** Sets the expiry to `ttlHours` from now. */
export async function extendPreview(deps: Db, preview: PreviewItem, ttlHours: number): Promise<PreviewItem> {
  if (!isLive(preview)) throw new AppError("conflict", `preview ${preview.id} is ${preview.state}: it cannot be extended`);
  const now = deps.now();
  const expires = iso(new Date(now.getTime() + ttlHours * 3600_000));
  const set = setFields({ expires_at: expires, updated_at: iso(now), gsi2sk: `${expires}#${preview.id}` });
  return updateItem(
    deps,
    previewItem,
    {
      Key: keys.preview(preview.id),
      ...set,
      ConditionExpression: "#state IN (:a, :b, :c, :d)",
      ExpressionAttributeNames: { ...set.ExpressionAttributeNames, "#state": "state" },
      ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":a": "provisioning", ":b": "ready", ":c": "resetting", ":d": "failed" },
    },
    `preview ${preview.id} is being deleted: it cannot be extended`,
  );
}

/** The preview role's password, for `/connections` and the worker only. */
export const previewPassword = (deps: Pick<Deps, "secretKey">, preview: PreviewItem) => open(deps.secretKey, preview.password_sealed);

/** Live previews past their expiry, oldest first (the dispatcher deletes them). */
export async function expiredPreviews(deps: Db, limit: number): Promise<PreviewItem[]> {
  return queryAll(
    deps,
    previewItem,
    {
      IndexName: "gsi2",
      KeyConditionExpression: "gsi2pk = :p AND gsi2sk < :now",
      ExpressionAttributeValues: { ":p": keys.previewExpiryIndex, ":now": `${iso(deps.now())}#` },
      Limit: limit,
    },
    limit,
  );
}

// ---------------------------------------------------------------------------------------------
// The worker's transitions: each is conditional on the preview still naming the job.

async function updateForJob(deps: Db, preview: Pick<PreviewItem, "id">, jobId: string, fields: Record<string, unknown>): Promise<PreviewItem | undefined> {
  const set = setFields({ ...fields, updated_at: iso(deps.now()) });
  try {
    return await updateItem(deps, previewItem, {
      Key: keys.preview(preview.id),
      ...set,
      ConditionExpression: "attribute_exists(pk) AND job_id = :job",
      ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":job": jobId },
    });
  } catch (err) {
    if (err instanceof AppError && err.code === "conflict") return undefined;
    throw err;
  }
}

/** The job has begun writing into the database. */
export const markActionStarted = (deps: Db, preview: PreviewItem, jobId: string) => updateForJob(deps, preview, jobId, { action_started: true });

/**
 * A transition that announces itself: the update and its events in one transaction, conditional on
 * the preview still naming the job and still being in one of the states `from`. A second call (a
 * redelivered job message, the reaper's repair racing the worker) finds the state moved on and
 * writes nothing, so each event is recorded once.
 */
async function announceForJob(
  deps: Db,
  preview: PreviewItem,
  jobId: string,
  fields: Record<string, unknown> & { state: PreviewState },
  from: PreviewState[],
  events: (at: string) => EventSpec[],
): Promise<PreviewItem | undefined> {
  const at = iso(deps.now());
  const set = setFields({ ...fields, updated_at: at });
  const was = Object.fromEntries(from.map((state, i) => [`:was${i}`, state]));
  const committed = await transactWriteIf(deps, [
    {
      Update: {
        TableName: deps.table,
        Key: keys.preview(preview.id),
        ...set,
        UpdateExpression: set.UpdateExpression!,
        ConditionExpression: `attribute_exists(pk) AND job_id = :job AND #state IN (${Object.keys(was).join(", ")})`,
        ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":job": jobId, ...was },
      },
    },
    ...events(at).map((e) => outboxPut(deps, e)),
  ]);
  return committed ? getPreview(deps, preview.id) : undefined;
}

/**
 * Restored and checked (or created empty): ready, with `preview.ready`, and for a restore
 * `restore.completed` as well (a subscriber to either hears it).
 */
export async function markPreviewReady(deps: Db, read: PreviewItem, jobId: string, pitr?: { restore_time: string }): Promise<PreviewItem | undefined> {
  // Read afresh: the job's copy is from its start, and an extend since then moved expires_at.
  // Provisioning and resetting are live, like ready: the expiry index entry stays as it is.
  const preview = (await getPreview(deps, read.id)) ?? read;
  return announceForJob(deps, preview, jobId, { state: "ready", error: null }, ["provisioning", "resetting"], (at) => [
    previewReadyEvent(preview, jobId, at),
    ...(preview.action === "restore" && pitr
      ? [
          restoreCompletedEvent(
            {
              organization_id: preview.organization_id,
              project_id: preview.project_id,
              job_id: jobId,
              backup_id: null,
              backup_key: null,
              target_kind: "preview",
              preview_id: preview.id,
              database_name: preview.database_name,
              completed_at: at,
            },
            { source_kind: "pitr", restore_time: pitr.restore_time },
          ),
        ]
      : []),
    ...(preview.action === "restore" && preview.action_backup_id
      ? [
          restoreCompletedEvent({
            organization_id: preview.organization_id,
            project_id: preview.project_id,
            job_id: jobId,
            backup_id: preview.action_backup_id,
            backup_key: backupObjectKey(preview.project_id, preview.action_backup_id),
            target_kind: "preview",
            preview_id: preview.id,
            database_name: preview.database_name,
            completed_at: at,
          }),
        ]
      : []),
  ]);
}

/**
 * The job failed: failed with the reason. The expiry index entry is rebuilt from the preview read
 * afresh (the job's copy is from its start, and an extend since then moved expires_at).
 */
export async function markPreviewFailed(deps: Db, read: PreviewItem, jobId: string, error: string): Promise<PreviewItem | undefined> {
  const preview = (await getPreview(deps, read.id)) ?? read;
  return updateForJob(deps, preview, jobId, { state: "failed", error, ...expiryIndex({ ...preview, state: "failed" }) });
}

/** Dropped: deleted, with `preview.deleted`. */
export const markPreviewDeleted = (deps: Db, preview: PreviewItem, jobId: string) =>
  announceForJob(deps, preview, jobId, { state: "deleted", error: null, gsi2pk: undefined, gsi2sk: undefined }, ["deleting"], (at) => [
    previewDeletedEvent(preview, jobId, at),
  ]);

/**
 * Brings the preview in line with its finished job (the job's transition is the fence and commits
 * first, so a worker that died right after it leaves the preview behind). Used on a late delivery,
 * when the last attempt's worker died, and by the reaper.
 */
export async function settlePreviewForJob(deps: Db, job: Pick<JobItem, "id" | "state" | "error" | "preview_database_id">): Promise<void> {
  if (!job.preview_database_id) return;
  const preview = await getPreview(deps, job.preview_database_id);
  if (!preview || preview.job_id !== job.id) return;
  if (preview.state !== "provisioning" && preview.state !== "resetting" && preview.state !== "deleting") return;
  if (job.state === "completed") {
    if (preview.action === "delete") await markPreviewDeleted(deps, preview, job.id);
    else await markPreviewReady(deps, preview, job.id);
  } else if (job.state === "failed") {
    await markPreviewFailed(deps, preview, job.id, job.error ?? "The preview's job failed.");
  }
}

export interface ExpiryReport {
  /** Previews past expires_at whose deletion was started. */
  deleted: number;
  /** Changed by a request meanwhile (the next tick looks again). */
  busy: number;
  jobIds: string[];
}

/**
 * Starts the deletion of every live preview past its `expires_at` (oldest first, up to `limit`
 * per tick): the same `instance.destroy` job a DELETE request makes.
 */
export async function expirePreviews(deps: Writer, getProjectOf: (id: string) => Promise<Project | undefined>, limit = 100): Promise<ExpiryReport> {
  const report: ExpiryReport = { deleted: 0, busy: 0, jobIds: [] };
  for (const preview of await expiredPreviews(deps, limit)) {
    const project = await getProjectOf(preview.project_id);
    if (!project) continue;
    try {
      const { job } = await requestPreviewDelete(deps, project, preview);
      report.deleted++;
      report.jobIds.push(job.id);
      deps.log.info("preview expired; deleting", { preview_id: preview.id, project_id: preview.project_id, job_id: job.id, expires_at: preview.expires_at });
    } catch (err) {
      if (err instanceof AppError && err.code === "conflict") report.busy++;
      else throw err;
    }
  }
  return report;
}
