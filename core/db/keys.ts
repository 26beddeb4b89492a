/**
 * Every key shape of the single table, in one place. `pk`/`sk` address an item; the two sparse
 * indexes serve the access patterns that GetItem cannot:
 *
 * | item            | pk                      | sk          | gsi1 (pk / sk)                 | gsi2 (pk / sk)                           |
 * |-----------------|-------------------------|-------------|--------------------------------|------------------------------------------|
 * | organization    | ORG#<org>               | ORG         | CLERKORG#<clerk org> / ORG     |                                          |
 * | name guard      | NAME#<kind>#<scope>#<n> | NAME        |                                |                                          |
 * | cluster         | CLS#<cls>               | CLS         |                                |                                          |
 * | project         | PRJ#<prj>               | PRJ         | ORG#<org>#PRJ / <prj>          |                                          |
 * | api key         | APIKEY#<sha256>         | APIKEY      | ORG#<org>#KEY / <key>          |                                          |
 * | backup          | PRJ#<prj>               | BKP#<bkp>   |                                | BKPEXP / <expires_at>#<bkp> (has artifact)|
 * | schedule        | PRJ#<prj>               | SCH         | SCHRETRY / <next_at>#<sch> (set aside) | SCHED / <HH:MM>#<sch> (active only) |
 * | job             | JOB#<job>               | JOB         | PRJ#<prj>#JOB / <job> (SVC#JOB for the service's own) | JOBS#<state> / <due time>#<job> (pending, running) |
 * | event (outbox)  | EVT#<evt>               | EVT         |                                | OUTBOX / <created_at>#<evt> (until relayed) |
 * | webhook endpoint| ORG#<org>               | WHE#<whe>   |                                |                                          |
 * | webhook delivery| WHE#<whe>               | WHD#<whd>   |                                | WHDUE / <next_attempt_at>#<whd> (pending) |
 * | export          | PRJ#<prj>               | EXP#<exp>   |                                | EXPEXP / <expires_at>#<exp> (completed)   |
 * | lock            | LOCK#<resource>         | LOCK        |                                |                                          |
 * | cluster job slot| LOCK#cluster:<cls>      | SLOT#<n>    |                                |                                          |
 * | waiter          | WAIT#<resource>         | <since>#<job> |                              |                                          |
 * | audit event     | PRJ#<prj> or ORG#<org>  | AUD#<aud>   | ORG#<org>#AUD / <aud>          |                                          |
 * | approval        | APPROVAL#<sha256>       | APPROVAL    |                                |                                          |
 * | idempotency     | IDEM#<prj>#<key>        | IDEM        |                                |                                          |
 * | schedule run    | SCHRUN#<sch>#<date>     | SCHRUN      |                                |                                          |
 * | dispatcher mark | DISPATCH                | WATERMARK   |                                |                                          |
 * | preview         | PVW#<pvw>               | PVW         | PRJ#<prj>#PVW / <pvw>          | PVWEXP / <expires_at>#<pvw> (live only)  |
 * | live previews   | PRJ#<prj>               | PVWLIVE     |                                |                                          |
 * | restore point   | PRJ#<prj>               | RPT#<rpt>   |                                |                                          |
 * | promotion       | JOB#<job>               | PROMOTE     |                                |                                          |
 * | promote guard   | PRJ#<prj>               | PROMOTING   |                                |                                          |
 * | WAL archive     | CLS#<cls>               | WAL         | WALARCH / <cls>                |                                          |
 * | base backup     | CLS#<cls>               | BBK#<bbk>   |                                |                                          |
 * | WAL gap         | CLS#<cls>               | GAP#<gap>   |                                |                                          |
 * | WAL segment     | WALSEG#<cls>            | <segment name> or HIST#<timeline> |              |                                          |
 * | pitr pin        | CLS#<cls>               | PITRPIN#<rpt> |                              |                                          |
 * | pitr request    | JOB#<job>               | PITR        |                                |                                          |
 * | pitr drill      | CLS#<cls>               | DRILL       |                                |                                          |
 * | CLI login       | CLILOGIN#<cli>          | CLILOGIN    |                                |                                          |
 */
export const keys = {
  organization: (id: string) => ({ pk: `ORG#${id}`, sk: "ORG" }),
  clerkOrgIndex: (clerkOrgId: string) => `CLERKORG#${clerkOrgId}`,
  nameGuard: (kind: string, scope: string, name: string) => ({ pk: `NAME#${kind}#${scope}#${name}`, sk: "NAME" }),
  cluster: (id: string) => ({ pk: `CLS#${id}`, sk: "CLS" }),
  project: (id: string) => ({ pk: `PRJ#${id}`, sk: "PRJ" }),
  orgProjectsIndex: (orgId: string) => `ORG#${orgId}#PRJ`,
  apiKey: (hash: string) => ({ pk: `APIKEY#${hash}`, sk: "APIKEY" }),
  orgKeysIndex: (orgId: string) => `ORG#${orgId}#KEY`,
  backup: (projectId: string, id: string) => ({ pk: `PRJ#${projectId}`, sk: `BKP#${id}` }),
  backupPrefix: "BKP#",
  backupExpiryIndex: "BKPEXP",
  schedule: (projectId: string) => ({ pk: `PRJ#${projectId}`, sk: "SCH" }),
  scheduleIndex: "SCHED",
  /** Schedules whose run failed to start, set aside by the dispatcher to retry on their own. */
  scheduleRetryIndex: "SCHRETRY",
  job: (id: string) => ({ pk: `JOB#${id}`, sk: "JOB" }),
  projectJobsIndex: (projectId: string) => `PRJ#${projectId}#JOB`,
  /** The service's own jobs (pitr drills): in no project's job list. */
  serviceJobsIndex: "SVC#JOB",
  jobStateIndex: (state: "pending" | "running") => `JOBS#${state}`,
  event: (id: string) => ({ pk: `EVT#${id}`, sk: "EVT" }),
  outboxIndex: "OUTBOX",
  webhookEndpoint: (orgId: string, id: string) => ({ pk: `ORG#${orgId}`, sk: `WHE#${id}` }),
  webhookEndpointPrefix: "WHE#",
  webhookDelivery: (endpointId: string, id: string) => ({ pk: `WHE#${endpointId}`, sk: `WHD#${id}` }),
  webhookDeliveryPrefix: "WHD#",
  dueDeliveriesIndex: "WHDUE",
  /** Project events live in the project's partition, organization-level ones in the organization's. */
  auditEvent: (scope: { projectId: string | null; organizationId: string }, id: string) =>
    scope.projectId ? { pk: `PRJ#${scope.projectId}`, sk: `AUD#${id}` } : { pk: `ORG#${scope.organizationId}`, sk: `AUD#${id}` },
  auditPrefix: "AUD#",
  orgAuditIndex: (orgId: string) => `ORG#${orgId}#AUD`,
  approval: (tokenHash: string) => ({ pk: `APPROVAL#${tokenHash}`, sk: "APPROVAL" }),
  export: (projectId: string, id: string) => ({ pk: `PRJ#${projectId}`, sk: `EXP#${id}` }),
  exportPrefix: "EXP#",
  exportExpiryIndex: "EXPEXP",
  /** A lock; the slots of a cluster's job cap (`cluster:<cls>#slot<n>`) share one partition, read by one Query. */
  lock: (resource: string) => {
    const slot = /^(cluster:[^#]+)#slot(\d+)$/.exec(resource);
    return slot ? { pk: `LOCK#${slot[1]}`, sk: `SLOT#${slot[2]}` } : { pk: `LOCK#${resource}`, sk: "LOCK" };
  },
  clusterSlots: (clusterId: string) => ({ pk: `LOCK#cluster:${clusterId}`, skPrefix: "SLOT#" }),
  /** A job waiting for `resource` (a database lock, a cluster's job slots), in arrival order. */
  waiter: (resource: string, since: string, jobId: string) => ({ pk: `WAIT#${resource}`, sk: `${since}#${jobId}` }),
  waiters: (resource: string) => `WAIT#${resource}`,
  idempotency: (projectId: string, key: string) => ({ pk: `IDEM#${projectId}#${key}`, sk: "IDEM" }),
  scheduleRun: (scheduleId: string, date: string) => ({ pk: `SCHRUN#${scheduleId}#${date}`, sk: "SCHRUN" }),
  dispatchWatermark: { pk: "DISPATCH", sk: "WATERMARK" },
  preview: (id: string) => ({ pk: `PVW#${id}`, sk: "PVW" }),
  projectPreviewsIndex: (projectId: string) => `PRJ#${projectId}#PVW`,
  previewExpiryIndex: "PVWEXP",
  livePreviews: (projectId: string) => ({ pk: `PRJ#${projectId}`, sk: "PVWLIVE" }),
  restorePoint: (projectId: string, id: string) => ({ pk: `PRJ#${projectId}`, sk: `RPT#${id}` }),
  restorePointPrefix: "RPT#",
  /** A promote's (or overwrite restore's) phases and plan, beside its job. */
  promotion: (jobId: string) => ({ pk: `JOB#${jobId}`, sk: "PROMOTE" }),
  /** The one promote or overwrite restore a project may have in progress. */
  promoteGuard: (projectId: string) => ({ pk: `PRJ#${projectId}`, sk: "PROMOTING" }),
  /** A cluster's WAL archive: its receiver's progress, slot and window (core/wal). */
  walArchive: (clusterId: string) => ({ pk: `CLS#${clusterId}`, sk: "WAL" }),
  /** Every cluster with an archive, for the receiver supervisor and archive health. */
  walArchiveIndex: "WALARCH",
  baseBackup: (clusterId: string, id: string) => ({ pk: `CLS#${clusterId}`, sk: `BBK#${id}` }),
  baseBackupPrefix: "BBK#",
  walGap: (clusterId: string, id: string) => ({ pk: `CLS#${clusterId}`, sk: `GAP#${id}` }),
  walGapPrefix: "GAP#",
  /** One item per archived segment, sorted by name (timeline, then position) in the cluster's own partition. */
  walSegment: (clusterId: string, name: string) => ({ pk: `WALSEG#${clusterId}`, sk: name }),
  walHistory: (clusterId: string, timeline: number) => ({ pk: `WALSEG#${clusterId}`, sk: `HIST#${timeline.toString(16).toUpperCase().padStart(8, "0")}` }),
  walSegmentPartition: (clusterId: string) => `WALSEG#${clusterId}`,
  /** An active restore point of kind pitr: the cluster's archive keeps what it needs (core/restores/points.ts). */
  pitrPin: (clusterId: string, pointId: string) => ({ pk: `CLS#${clusterId}`, sk: `PITRPIN#${pointId}` }),
  pitrPinPrefix: "PITRPIN#",
  /** A point-in-time restore's target, beside its job (core/restores/pitr.ts). */
  pitrRequest: (jobId: string) => ({ pk: `JOB#${jobId}`, sk: "PITR" }),
  /** A cluster's point-in-time drill: the last result and the day the last one was queued (core/wal/drills.ts). */
  pitrDrill: (clusterId: string) => ({ pk: `CLS#${clusterId}`, sk: "DRILL" }),
  /** A device login of the CLI (kept by TTL a while past its expiry). */
  cliLogin: (id: string) => ({ pk: `CLILOGIN#${id}`, sk: "CLILOGIN" }),
} as const;

/** Epoch seconds, for the TTL attribute. */
export const ttlAt = (d: Date): number => Math.floor(d.getTime() / 1000);
