/**
 * The receiver of one cluster: a supervised `pg_receivewal` over the cluster's replication slot,
 * writing into a local spool, and a shipper that sends each finished segment to S3 at once and
 * the segment being written (`.partial`) every few seconds, gzip with SHA-256, recording each in
 * the index. It proves continuity as it goes: a segment that does not follow the archived WAL, or
 * a slot the server invalidated, is a gap, recorded with its bounds, and a base backup is made
 * due at once so the window reopens.
 *
 * Why pg_receivewal and not archive_command: it needs nothing on the database host (no file on
 * its disk, no setting but a replication entry), it works for clusters the service does not run,
 * and it streams WAL as it is written, so the lag is the shipping timer, not a segment's fill time
 * or `archive_timeout`. The slot keeps WAL on the server while the receiver is down; the server's
 * `max_slot_wal_keep_size` bounds that, and the slot's `wal_status` tells when it was exceeded.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { DeleteObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import type pg from "pg";
import { errorText } from "../concurrency.ts";
import { iso, type Deps } from "../deps.ts";
import { newId } from "../ids.ts";
import { getClusterConnection } from "../orgs/orgs.ts";
import { redact } from "../redact.ts";
import {
  connectForWal,
  createSlot,
  dropSlot,
  pgBinDirFor,
  readSpool,
  receiverWritePosition,
  serverWal,
  slotState,
  startReceiveWal,
  walHeartbeat,
} from "../pg/walstream.ts";
import type { Tool } from "../pg/process.ts";
import { closeQuietly } from "../pg/pgconn.ts";
import { getArchive, getWalFile, putGap, recordWalFile, updateArchive } from "./archive.ts";
import { historyKey, partialKey, segmentKey, WAL_COMPRESSION } from "./layout.ts";
import { compareLsn, maxLsn, parseSegmentName, segmentBounds, segmentName, segnoOf } from "../pg/lsn.ts";
import type { WalArchiveItem, WalGapItem, WalSegmentItem } from "./records.ts";

const gzipAsync = promisify(gzip);

type ReceiverDeps = Pick<Deps, "ddb" | "table" | "now" | "s3" | "bucket" | "secretKey" | "pgBinDirs" | "log" | "workerId">;

export interface ReceiverOptions {
  /** Local spool root; each cluster gets `<root>/<cluster id>` (kept across restarts: pg_receivewal resumes from it). */
  spoolDir: string;
  /** How often finished segments are looked for (they ship as soon as seen). */
  tickMs: number;
  /** How often the partial segment ships and the restorable time advances: the lag's main term. */
  partialIntervalMs: number;
  /** Wait before restarting a pg_receivewal that stopped. */
  restartDelayMs: number;
}

export const defaultReceiverOptions = (spoolDir: string): ReceiverOptions => ({ spoolDir, tickMs: 1_000, partialIntervalMs: 5_000, restartDelayMs: 2_000 });

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

export class ClusterReceiver {
  private readonly stopper = new AbortController();
  private loop: Promise<void> | undefined;
  private tool: Tool | undefined;
  /** Heartbeats not yet covered by the archive, oldest first. */
  private probes: { at: Date; lsn: string }[] = [];
  private readonly spool: string;
  /** True while pg_receivewal streams after the slot was checked: a base backup taken now has its WAL archived. */
  streaming = false;

  constructor(
    private readonly deps: ReceiverDeps,
    readonly clusterId: string,
    private readonly opts: ReceiverOptions,
  ) {
    this.spool = join(opts.spoolDir, clusterId);
  }

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  /** Stops pg_receivewal (SIGKILL: as a crash would) and the loop; what is spooled ships at the next start. */
  async stop(): Promise<void> {
    this.stopper.abort();
    this.tool?.kill();
    await this.loop;
  }

  private get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.session();
      } catch (err) {
        if (this.stopped) break;
        const message = redact(errorText(err)).slice(0, 2000);
        this.deps.log.warn("WAL receiver stopped; restarting", { cluster_id: this.clusterId, error: message });
        await updateArchive(this.deps, this.clusterId, { receiver_error: message }).catch(() => undefined);
      }
      await sleep(this.opts.restartDelayMs, this.stopper.signal);
    }
  }

  /** One pg_receivewal lifetime: check the slot, start streaming, ship until it exits. */
  private async session(): Promise<void> {
    const conn = await getClusterConnection(this.deps, this.clusterId);
    let client: pg.Client | undefined;
    try {
      client = await connectForWal(conn);
      const server = await serverWal(client);
      if (server.walLevel === "minimal") throw new Error("the cluster runs with wal_level=minimal: WAL cannot be streamed (set wal_level=replica)");
      let archive = await getArchive(this.deps, this.clusterId);
      if (!archive?.enabled) return void (await sleep(10_000, this.stopper.signal));
      await mkdir(this.spool, { recursive: true });
      archive = await this.checkSlot(client, archive);
      await createSlot(client, archive.slot_name);
      const slot = await slotState(client, archive.slot_name);
      if (archive.chain_start_lsn === null || archive.archived_lsn === null) {
        // A new archive: it starts where the slot started keeping WAL (its segment's start).
        const start = segmentBounds(segnoOf(slot.restartLsn!, server.segmentSize), server.segmentSize).start;
        archive = await updateArchive(this.deps, this.clusterId, {
          chain_start_lsn: start,
          archived_lsn: start,
          timeline: server.timeline,
          segment_size: server.segmentSize,
        });
      } else if (archive.timeline !== server.timeline || archive.segment_size !== server.segmentSize) {
        archive = await updateArchive(this.deps, this.clusterId, { timeline: server.timeline, segment_size: server.segmentSize });
      }
      const binDir = await pgBinDirFor(server.major, this.deps.pgBinDirs);
      this.tool = startReceiveWal(binDir, conn, { slot: archive.slot_name, dir: this.spool });
      const exited = this.tool.exited;
      this.streaming = true;
      let done = false;
      void exited.then(() => (done = true));
      await updateArchive(this.deps, this.clusterId, { receiver_id: this.deps.workerId, receiver_heartbeat_at: iso(this.deps.now()), receiver_error: null });
      let nextPartial = 0;
      while (!this.stopped && !done) {
        archive = await this.shipFinished(archive);
        if (Date.now() >= nextPartial) {
          nextPartial = Date.now() + this.opts.partialIntervalMs;
          archive = await this.shipPartial(client, archive);
        }
        await Promise.race([sleep(this.opts.tickMs, this.stopper.signal), exited]);
      }
      const exit = await exited;
      // What it finished before stopping still ships now.
      await this.shipFinished(archive);
      if (!this.stopped)
        throw new Error(`pg_receivewal exited (${exit.code ?? exit.signal}): ${this.tool.report(exit).stderr.trim().split("\n").slice(-3).join(" ")}`);
    } finally {
      this.streaming = false;
      this.tool?.kill();
      await closeQuietly(client);
    }
  }

  /**
   * A slot the server invalidated (`max_slot_wal_keep_size` exceeded) or that disappeared while
   * the archive had WAL from it: the WAL in between is gone for good. Records the gap, drops the
   * slot and the spool, and makes a base backup due at once.
   */
  private async checkSlot(client: pg.Client, archive: WalArchiveItem): Promise<WalArchiveItem> {
    const slot = await slotState(client, archive.slot_name);
    const lost = slot.exists ? slot.walStatus === "lost" || slot.restartLsn === null : archive.archived_lsn !== null;
    if (!lost) return archive;
    if (slot.exists) await dropSlot(client, archive.slot_name);
    await createSlot(client, archive.slot_name);
    const fresh = await slotState(client, archive.slot_name);
    const resume = segmentBounds(segnoOf(fresh.restartLsn!, archive.segment_size), archive.segment_size).start;
    await rm(this.spool, { recursive: true, force: true });
    await mkdir(this.spool, { recursive: true });
    this.probes = [];
    const from = archive.archived_lsn ?? resume;
    this.deps.log.error("WAL archive gap: the replication slot was lost", { cluster_id: this.clusterId, from_lsn: from, to_lsn: resume });
    return this.recordGap(archive, {
      reason: "slot_lost",
      fromLsn: from,
      toLsn: resume,
      segments: [],
      detail: slot.exists
        ? `the server removed WAL the replication slot ${archive.slot_name} still needed (max_slot_wal_keep_size exceeded while the receiver was behind)`
        : `the replication slot ${archive.slot_name} disappeared from the server`,
    });
  }

  private async recordGap(
    archive: WalArchiveItem,
    g: { reason: WalGapItem["reason"]; fromLsn: string; toLsn: string; segments: string[]; detail: string },
  ): Promise<WalArchiveItem> {
    const now = this.deps.now();
    await putGap(this.deps, {
      item_type: "wal_gap",
      id: newId("walGap", now),
      cluster_id: this.clusterId,
      reason: g.reason,
      timeline: archive.timeline,
      from_lsn: g.fromLsn,
      to_lsn: g.toLsn,
      from: archive.restorable_time,
      to: null,
      segments: g.segments,
      detail: g.detail,
      detected_at: iso(now),
    });
    return updateArchive(this.deps, this.clusterId, {
      chain_start_lsn: g.toLsn,
      archived_lsn: g.toLsn,
      base_backup_due_at: iso(now),
      base_backup_reason: "after_gap",
    });
  }

  /** Ships every finished segment (and history file) in the spool, in WAL order, then removes it locally. */
  private async shipFinished(archive: WalArchiveItem): Promise<WalArchiveItem> {
    const spool = await readSpool(this.spool);
    for (const name of spool.history) {
      const timeline = Number.parseInt(name.slice(0, 8), 16);
      if (!(await getWalFile(this.deps, this.clusterId, name))) {
        await this.upload(
          await readFile(join(this.spool, name)),
          { name, kind: "history", timeline, partial: false, start: null, end: null, key: historyKey(this.clusterId, timeline) },
          archive,
        );
      }
    }
    for (const name of spool.finished) {
      const { timeline, segno } = parseSegmentName(name, archive.segment_size);
      const { start, end } = segmentBounds(segno, archive.segment_size);
      if (archive.archived_lsn !== null && compareLsn(start, archive.archived_lsn) > 0) {
        // WAL between what is archived and this segment never reached us: a gap, honestly recorded.
        const missing: string[] = [];
        for (let s = segnoOf(archive.archived_lsn, archive.segment_size); s < segno && missing.length < 1000; s++)
          missing.push(segmentName(timeline, s, archive.segment_size));
        archive = await this.recordGap(archive, {
          reason: "missing",
          fromLsn: archive.archived_lsn,
          toLsn: start,
          segments: missing,
          detail: `segment ${name} arrived but WAL from ${archive.archived_lsn} on was never received`,
        });
      }
      const bytes = await readFile(join(this.spool, name));
      const existing = await getWalFile(this.deps, this.clusterId, name);
      if (!existing || existing.partial) {
        await this.upload(bytes, { name, kind: "segment", timeline, partial: false, start, end, key: segmentKey(this.clusterId, timeline, name) }, archive);
        if (existing?.partial) await this.deps.s3.send(new DeleteObjectCommand({ Bucket: this.deps.bucket, Key: existing.key })).catch(() => undefined);
      }
      // Received again after a restart: the index keeps the first copy (same WAL, same bytes).
      archive = await this.advance(archive, end);
      await rm(join(this.spool, name), { force: true });
    }
    return archive;
  }

  /**
   * Ships the segment being written, up to what pg_receivewal has written (its walsender's
   * `write_lsn`, read before the file), and advances the restorable time with the heartbeats the
   * archive now covers.
   */
  private async shipPartial(client: pg.Client, archive: WalArchiveItem): Promise<WalArchiveItem> {
    const beat = await walHeartbeat(client);
    this.probes.push(beat);
    if (this.probes.length > 1000) this.probes.splice(0, this.probes.length - 1000);
    const written = await receiverWritePosition(client, archive.slot_name);
    const slot = await slotState(client, archive.slot_name);
    const spool = await readSpool(this.spool);
    if (written && spool.partial && archive.archived_lsn !== null && compareLsn(written, archive.archived_lsn) > 0) {
      const { timeline, segno } = parseSegmentName(spool.partial, archive.segment_size);
      const { start, end } = segmentBounds(segno, archive.segment_size);
      if (compareLsn(start, archive.archived_lsn) <= 0 && compareLsn(written, start) > 0) {
        const upTo = compareLsn(written, end) < 0 ? written : end;
        const bytes = await readFile(join(this.spool, `${spool.partial}.partial`)).catch(() => undefined);
        if (bytes && bytes.length === archive.segment_size) {
          await this.upload(
            bytes,
            { name: spool.partial, kind: "segment", timeline, partial: true, start, end: upTo, key: partialKey(this.clusterId, timeline, spool.partial) },
            archive,
          );
          archive = await this.advance(archive, upTo);
        }
      }
    }
    return updateArchive(this.deps, this.clusterId, {
      receiver_id: this.deps.workerId,
      receiver_heartbeat_at: iso(this.deps.now()),
      slot_retained_bytes: slot.retainedBytes,
    });
  }

  /** Moves the archived end to `end` and the restorable time to the newest heartbeat at or before it. */
  private async advance(archive: WalArchiveItem, end: string): Promise<WalArchiveItem> {
    const archived = archive.archived_lsn ? maxLsn(archive.archived_lsn, end) : end;
    let covered: { at: Date; lsn: string } | undefined;
    while (this.probes.length && compareLsn(this.probes[0]!.lsn, archived) <= 0) covered = this.probes.shift();
    const fields: Partial<WalArchiveItem> = { archived_lsn: archived, archived_at: iso(this.deps.now()) };
    if (covered && (!archive.restorable_time || covered.at.getTime() > Date.parse(archive.restorable_time))) {
      fields.restorable_time = covered.at.toISOString();
      fields.restorable_lsn = covered.lsn;
    }
    return updateArchive(this.deps, this.clusterId, fields);
  }

  private async upload(
    bytes: Buffer,
    f: { name: string; kind: "segment" | "history"; timeline: number; partial: boolean; start: string | null; end: string | null; key: string },
    archive: WalArchiveItem,
  ): Promise<void> {
    // 1 MiB pieces, not zlib's 16 KiB: a segment in a few trips to the thread pool, not a thousand.
    const stored = await gzipAsync(bytes, { level: 6, chunkSize: 1024 * 1024 });
    const storedSha = createHash("sha256").update(stored).digest("hex");
    await this.deps.s3.send(
      new PutObjectCommand({ Bucket: this.deps.bucket, Key: f.key, Body: stored, ChecksumSHA256: Buffer.from(storedSha, "hex").toString("base64") }),
    );
    const item: WalSegmentItem = {
      item_type: "wal_segment",
      cluster_id: this.clusterId,
      name: f.name,
      kind: f.kind,
      timeline: f.timeline,
      partial: f.partial,
      start_lsn: f.start,
      end_lsn: f.end,
      key: f.key,
      compression: WAL_COMPRESSION,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      stored_sha256: storedSha,
      size_bytes: bytes.length,
      stored_bytes: stored.length,
      restorable_time: archive.restorable_time,
      archived_at: iso(this.deps.now()),
      checked_at: null,
    };
    await recordWalFile(this.deps, item);
    // Every upload, the partial segment's re-uploads included (what shipping it every few seconds costs).
    this.deps.log.debug("WAL file shipped", {
      cluster_id: this.clusterId,
      name: f.name,
      partial: f.partial,
      size_bytes: bytes.length,
      stored_bytes: stored.length,
    });
  }
}
