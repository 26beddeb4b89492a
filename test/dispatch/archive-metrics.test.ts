// First: the API modules need @hono/zod-openapi loaded before any domain schema is built.
import { createTestEnv, type TestEnv } from "../support/env.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emfLines } from "./support.ts";
import { dispatchMetrics, publishTickMetrics } from "../../core/dispatch/metrics.ts";
import type { TickReport } from "../../core/dispatch/handler.ts";
import { newId } from "../../core/ids.ts";
import { enableArchive, putBaseBackup, putGap, updateArchive } from "../../core/wal/archive.ts";
import { fakeArchive } from "../support/fake-archive.ts";

/**
 * The WAL archive's metrics, published by the dispatcher after each tick (Powertools Metrics, EMF
 * lines): per cluster and the worst service-wide, the figures infra/alarms.ts alarms on.
 */
const t0 = Date.parse("2026-12-06T00:00:00Z");
const now = t0 + 31 * 60_000;
let env: TestEnv;
const clusters = { healthy: "", sick: "", off: "" };

beforeAll(async () => {
  env = await createTestEnv({ now: () => new Date(now) });
  for (const name of Object.keys(clusters) as (keyof typeof clusters)[]) clusters[name] = (await env.seedTenant()).clusterId;
  // Healthy: restorable 20 s ago, its slot keeps 48 MiB; the fixture's old gap is closed by its second base backup.
  await fakeArchive(env, clusters.healthy, t0);
  await updateArchive(env.deps, clusters.healthy, { restorable_time: new Date(now - 20_000).toISOString(), slot_retained_bytes: 48 * 1024 * 1024 });
  // Sick: nothing restorable for 10 minutes, a gap no base backup closed, and the last base backup failed.
  await fakeArchive(env, clusters.sick, t0);
  await updateArchive(env.deps, clusters.sick, { restorable_time: new Date(now - 600_000).toISOString(), slot_retained_bytes: 3 * 1024 ** 3 });
  await putGap(env.deps, {
    item_type: "wal_gap",
    id: newId("walGap", new Date(now - 60_000)),
    cluster_id: clusters.sick,
    reason: "missing",
    timeline: 1,
    from_lsn: "0/9000000",
    to_lsn: "0/B000000",
    from: new Date(now - 600_000).toISOString(),
    to: null,
    segments: ["000000010000000000000009", "00000001000000000000000A"],
    detail: "segment arrived but WAL before it was never received",
    detected_at: new Date(now - 60_000).toISOString(),
  });
  await putBaseBackup(env.deps, {
    item_type: "base_backup",
    id: newId("baseBackup", new Date(now - 30_000)),
    cluster_id: clusters.sick,
    state: "failed",
    trigger: "after_gap",
    timeline: null,
    start_lsn: null,
    end_lsn: null,
    start_segment: null,
    started_at: new Date(now - 30_000).toISOString(),
    finished_at: new Date(now - 20_000).toISOString(),
    verified_at: null,
    key: "basebackups/x/base.tar.gz",
    manifest_key: "basebackups/x/backup_manifest",
    compression: "gzip",
    sha256: null,
    size_bytes: null,
    raw_bytes: null,
    duration_ms: 10_000,
    error: "pg_basebackup failed",
    worker_id: null,
    updated_at: new Date(now - 20_000).toISOString(),
  });
  // Off: an archive turned off long ago is nobody's alarm.
  await enableArchive(env.deps, clusters.off);
  await updateArchive(env.deps, clusters.off, { enabled: false });
});
afterAll(async () => env?.cleanup());

const tick = (): TickReport => ({ at: new Date(now).toISOString(), errors: [], phases: {}, ms: 1 });

describe("the WAL archive's metrics", () => {
  it("one line per archived cluster (lag, open gaps, failing base backup, slot WAL), the worst of them service-wide", async () => {
    const lines = await emfLines(() => publishTickMetrics(env.deps, tick(), dispatchMetrics()));
    const perCluster = lines.filter((l) => l.cluster);
    expect(perCluster.map((l) => l.cluster).sort()).toEqual([clusters.healthy, clusters.sick].sort());
    for (const l of perCluster) {
      expect(l._aws.CloudWatchMetrics[0]).toMatchObject({
        Namespace: "CapyDB",
        Dimensions: [expect.arrayContaining(["service", "cluster"])],
        Metrics: expect.arrayContaining([
          { Name: "WalArchiveLagSeconds", Unit: "Seconds" },
          { Name: "WalArchiveOpenGaps", Unit: "Count" },
          { Name: "BaseBackupFailing", Unit: "Count" },
          { Name: "WalSlotRetainedBytes", Unit: "Bytes" },
        ]),
      });
    }
    const by = (id: string) => perCluster.find((l) => l.cluster === id);
    expect(by(clusters.healthy)).toMatchObject({
      service: "dispatch",
      WalArchiveLagSeconds: 20,
      WalArchiveOpenGaps: 0,
      BaseBackupFailing: 0,
      WalSlotRetainedBytes: 48 * 1024 * 1024,
    });
    expect(by(clusters.sick)).toMatchObject({ WalArchiveLagSeconds: 600, WalArchiveOpenGaps: 1, BaseBackupFailing: 1, WalSlotRetainedBytes: 3 * 1024 ** 3 });

    const service = lines.find((l) => !l.cluster)!;
    expect(service._aws.CloudWatchMetrics[0].Dimensions).toEqual([["service"]]);
    expect(service).toMatchObject({ WalArchiveLagSeconds: 600, WalArchiveOpenGaps: 1, BaseBackupFailing: 1, WalSlotRetainedBytes: 3 * 1024 ** 3 });
  });

  it("an archive that never proved a time lags since it was created; no slot figure is published when unknown", async () => {
    const fresh = (await env.seedTenant()).clusterId;
    await enableArchive({ ...env.deps, now: () => new Date(now - 300_000) }, fresh);
    try {
      const lines = await emfLines(() => publishTickMetrics(env.deps, tick(), dispatchMetrics()));
      const line = lines.find((l) => l.cluster === fresh);
      expect(line).toMatchObject({ WalArchiveLagSeconds: 300, WalArchiveOpenGaps: 0, BaseBackupFailing: 0 });
      expect(line).not.toHaveProperty("WalSlotRetainedBytes");
    } finally {
      await updateArchive(env.deps, fresh, { enabled: false });
    }
  });

  it("leaves the archive figures out rather than reporting 0 when the index cannot be read", async () => {
    const broken = { ...env.deps, table: "no-such-table" };
    const lines = await emfLines(() => publishTickMetrics(broken, tick(), dispatchMetrics()));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ DispatchPhaseFailures: 0 });
    expect(lines[0]).not.toHaveProperty("WalArchiveLagSeconds");
  });
});
