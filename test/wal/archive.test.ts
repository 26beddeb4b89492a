/**
 * The WAL archive on real parts: its own PostgreSQL 15 (a small max_slot_wal_keep_size, so the
 * slot cap can be exceeded in seconds), pg_receivewal, DynamoDB Local and the S3 stand-in.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCluster } from "../../core/orgs/orgs.ts";
import { enableArchive, getArchive, listBaseBackups, listGaps, listSegments, readWalFile, restorableWindow, WalObjectError } from "../../core/wal/archive.ts";
import { startArchiver } from "../../core/wal/archiver.ts";
import { checkArchive } from "../../core/wal/continuity.ts";
import { compareLsn, parseSegmentName } from "../../core/pg/lsn.ts";
import { enforceRetention } from "../../core/wal/retention.ts";
import { startPostgres, type PostgresServer } from "../../local/postgres.ts";
import { freePort, waitFor } from "../../local/wait.ts";
import { createTestEnv, uniq, type TestEnv } from "../support/env.ts";

let env: TestEnv;
let server: PostgresServer;
let clusterId: string;
const dir = mkdtempSync(join(tmpdir(), "capydb-wal-test-"));

const opts = () => ({
  receiver: { spoolDir: join(dir, "spool"), tickMs: 300, partialIntervalMs: 1_000, restartDelayMs: 500 },
  scanMs: 500,
  retentionMs: 3_600_000,
  scratchDir: dir,
});

async function sql<T extends pg.QueryResultRow>(text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

/** Writes about `mb` MiB of WAL (one transaction per statement) and returns the insert position after it. */
async function writeWal(mb: number): Promise<string> {
  await sql("CREATE TABLE IF NOT EXISTS filler (id bigserial primary key, pad text)");
  for (let i = 0; i < mb; i++) await sql("INSERT INTO filler (pad) SELECT repeat(md5(random()::text), 32) FROM generate_series(1, 900)");
  return (await sql<{ lsn: string }>("SELECT pg_current_wal_insert_lsn()::text AS lsn"))[0]!.lsn;
}

const archivedPast = (lsn: string) => async () => {
  const a = await getArchive(env.deps, clusterId);
  return a?.archived_lsn ? compareLsn(a.archived_lsn, lsn) >= 0 : false;
};

beforeAll(async () => {
  env = await createTestEnv();
  server = await startPostgres({
    dataDir: join(dir, "pg"),
    port: await freePort(),
    password: randomBytes(12).toString("hex"),
    settings: { wal_level: "replica", max_slot_wal_keep_size: "48MB", max_wal_size: "64MB", min_wal_size: "32MB" },
  });
  clusterId = (await createCluster(env.deps, { name: uniq("cls"), url: `${server.url}?sslmode=disable`, insecure_tls: true })).id;
});

afterAll(async () => {
  await server?.stop();
  await env?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe("WAL archive", () => {
  it("archives continuously: a base backup at once, then rows written now are covered by latest_restore_time within seconds", async () => {
    await enableArchive(env.deps, clusterId);
    const archiver = startArchiver(env.deps, opts());
    try {
      await waitFor(async () => (await restorableWindow(env.deps, clusterId)).available, { timeoutMs: 90_000, what: "the window to open" });
      const [bb] = await listBaseBackups(env.deps, clusterId);
      expect(bb, JSON.stringify(bb)).toMatchObject({ state: "completed", trigger: "initial", compression: "gzip" });
      expect(bb!.verified_at).not.toBeNull();
      expect(compareLsn(bb!.end_lsn!, bb!.start_lsn!)).toBeGreaterThanOrEqual(0);
      const stored = await env.deps.s3.send(new GetObjectCommand({ Bucket: env.deps.bucket, Key: bb!.key }));
      expect(Number(stored.ContentLength)).toBe(bb!.size_bytes);

      await sql("CREATE TABLE ledger (id int, at timestamptz default clock_timestamp())");
      await sql("INSERT INTO ledger (id) VALUES (1)");
      const committed = (await sql<{ at: Date }>("SELECT max(at) AS at FROM ledger"))[0]!.at;
      const t0 = Date.now();
      await waitFor(
        async () => {
          const w = await restorableWindow(env.deps, clusterId);
          return w.latest_restore_time !== null && Date.parse(w.latest_restore_time) >= committed.getTime();
        },
        { timeoutMs: 30_000, what: "the commit to be restorable" },
      );
      expect(Date.now() - t0).toBeLessThan(30_000);
      const w = await restorableWindow(env.deps, clusterId);
      expect(w.lag_seconds).toBeLessThanOrEqual(30);
      expect(w.earliest_restore_time).toBe(bb!.finished_at);
    } finally {
      await archiver.stop();
    }
  });

  it("a receiver killed mid-segment and restarted loses and duplicates nothing: contiguous segments, no gap", async () => {
    let archiver = startArchiver(env.deps, opts());
    await waitFor(async () => (await getArchive(env.deps, clusterId))?.receiver_error === null && archiver.receivers.size > 0, {
      timeoutMs: 20_000,
      what: "the receiver",
    });
    const mid = await writeWal(20); // more than a segment: one finishes, the next is part-written
    await waitFor(archivedPast(mid), { timeoutMs: 60_000, what: "WAL archived" });
    await archiver.stop(); // SIGKILL to pg_receivewal, mid-segment
    const end = await writeWal(20);
    archiver = startArchiver(env.deps, opts());
    try {
      await waitFor(archivedPast(end), { timeoutMs: 90_000, what: "WAL archived after the restart" });
      const segs = (await listSegments(env.deps, clusterId)).filter((s) => !s.partial);
      expect(segs.length).toBeGreaterThanOrEqual(2);
      const numbers = segs.map((s) => parseSegmentName(s.name).segno);
      for (let i = 1; i < numbers.length; i++) expect(numbers[i]! - numbers[i - 1]!, segs.map((s) => s.name).join(",")).toBe(1n);
      expect(await listGaps(env.deps, clusterId)).toEqual([]);
      expect((await checkArchive(env.deps, clusterId)).gaps).toEqual([]);
    } finally {
      await archiver.stop();
    }
  });

  it("a segment reads back as exactly the WAL PostgreSQL wrote; an object holding more than the index recorded is refused as corrupt", async () => {
    const seg = (await listSegments(env.deps, clusterId)).find((s) => !s.partial)!;
    const raw = await readWalFile(env.deps, seg);
    expect(raw.length).toBe(seg.size_bytes);
    expect(createHash("sha256").update(raw).digest("hex")).toBe(seg.sha256);
    // The object unchanged, its record saying one byte less: gunzip stops at the recorded size.
    const err = await readWalFile(env.deps, { ...seg, size_bytes: seg.size_bytes - 1 }, { rawChecksum: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalObjectError);
    expect(err).toMatchObject({ reason: "corrupt", message: expect.stringContaining(`archived WAL ${seg.name} does not decompress`) });
  });

  it("a corrupt segment object (bytes changed in S3) is found and reported as a gap", async () => {
    const [seg] = (await listSegments(env.deps, clusterId)).filter((s) => !s.partial);
    await env.deps.s3.send(new PutObjectCommand({ Bucket: env.deps.bucket, Key: seg!.key, Body: Buffer.from("not the WAL that was archived") }));
    const { gaps } = await checkArchive(env.deps, clusterId);
    expect(gaps).toMatchObject([{ reason: "corrupt", from_lsn: seg!.start_lsn, to_lsn: seg!.end_lsn, segments: [seg!.name] }]);
    const w = await restorableWindow(env.deps, clusterId);
    expect(w.gaps.map((g) => g.reason)).toContain("corrupt");
    expect((await getArchive(env.deps, clusterId))?.base_backup_due_at).not.toBeNull();
    // Put the right bytes back is impossible (they are gone); the gap stays recorded, and a second sweep does not repeat it.
    expect((await checkArchive(env.deps, clusterId)).gaps).toEqual([]);
  });

  it("a receiver stopped longer than the slot cap allows: a gap is recorded, a base backup follows, the window says so", async () => {
    const before = await listBaseBackups(env.deps, clusterId);
    // Past max_slot_wal_keep_size (48MB) with the receiver down; the checkpoint removes the WAL.
    await writeWal(80);
    await sql("CHECKPOINT");
    const lost = await sql<{ wal_status: string }>("SELECT wal_status FROM pg_replication_slots");
    expect(lost.map((r) => r.wal_status)).toContain("lost");
    const archiver = startArchiver(env.deps, opts());
    try {
      await waitFor(async () => (await listGaps(env.deps, clusterId)).some((g) => g.reason === "slot_lost"), { timeoutMs: 30_000, what: "the gap" });
      const [gap] = (await listGaps(env.deps, clusterId)).filter((g) => g.reason === "slot_lost");
      await waitFor(
        async () =>
          (await listBaseBackups(env.deps, clusterId)).some(
            (b) => b.trigger === "after_gap" && b.state === "completed" && compareLsn(b.start_lsn!, gap!.to_lsn) >= 0 && !before.some((o) => o.id === b.id),
          ),
        { timeoutMs: 120_000, what: "a base backup after the gap" },
      );
      const w = await restorableWindow(env.deps, clusterId);
      const slotGap = w.gaps.find((g) => g.reason === "slot_lost")!;
      expect(slotGap.to, JSON.stringify(w)).not.toBeNull();
      await waitFor(
        async () => {
          const now = await restorableWindow(env.deps, clusterId);
          return now.latest_restore_time !== null && Date.parse(now.latest_restore_time) > Date.parse(slotGap.to!);
        },
        { timeoutMs: 30_000, what: "the window to reopen after the gap" },
      );
      // The window reopens exactly at the base backup after the gap, and nothing restores inside it.
      const reopened = await restorableWindow(env.deps, clusterId);
      expect(reopened.spans.at(-1)!.from).toBe(slotGap.to);
      expect(reopened.spans.some((s) => Date.parse(s.from) < Date.parse(slotGap.to!) && Date.parse(s.to) > Date.parse(slotGap.to!))).toBe(false);
    } finally {
      await archiver.stop();
    }
  });

  it("retention: after the window passes (an injected clock) old base backups and WAL go, the newest one's stays, and a pinned time keeps what it needs", async () => {
    const bbs = (await listBaseBackups(env.deps, clusterId)).filter((b) => b.state === "completed");
    expect(bbs.length).toBeGreaterThanOrEqual(2);
    const [newest, ...older] = bbs;
    const oldest = older.at(-1)!;
    const later = { ...env.deps, now: () => new Date(Date.now() + 8 * 86_400_000) };

    // A pin inside the oldest base backup's range keeps it and its WAL.
    const pin = new Date(Date.parse(oldest.finished_at!) + 1);
    const pinned = await enforceRetention(later, clusterId, async () => [pin]);
    expect(pinned?.anchor).toBe(oldest.id);
    expect((await listBaseBackups(env.deps, clusterId)).map((b) => b.id)).toContain(oldest.id);

    const segmentsBefore = await listSegments(env.deps, clusterId);
    const res = await enforceRetention(later, clusterId);
    expect(res?.anchor).toBe(newest!.id);
    const left = await listBaseBackups(env.deps, clusterId);
    expect(left.map((b) => b.id)).toEqual([newest!.id]);
    await expect(env.deps.s3.send(new GetObjectCommand({ Bucket: env.deps.bucket, Key: oldest.key }))).rejects.toThrow();
    const segmentsAfter = await listSegments(env.deps, clusterId);
    expect(segmentsAfter.length).toBeLessThan(segmentsBefore.length);
    // Nothing the newest base backup needs went: every segment from its start is still there.
    for (const s of segmentsBefore.filter((x) => x.end_lsn && compareLsn(x.end_lsn, newest!.start_lsn!) > 0))
      expect(segmentsAfter.map((x) => x.name)).toContain(s.name);
    const w = await restorableWindow(env.deps, clusterId);
    expect(w.earliest_restore_time).toBe(newest!.finished_at);
    await env.deps.s3.send(new DeleteObjectCommand({ Bucket: env.deps.bucket, Key: "unused" })).catch(() => undefined);
  });
});
