/**
 * PostgreSQL's own WAL tooling, driven from Node: a replication slot and `pg_receivewal` writing
 * segments into a local spool directory, and the SQL that reads the slot and the server's WAL
 * position. Knows nothing of archives, S3 or the index (core/wal does).
 */
import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type pg from "pg";
import { connect, toolEnv, type ClusterConnection } from "./pgconn.ts";
import { startTool, type Tool } from "./process.ts";
import { installedPgTools } from "./pgtools.ts";

/** The directory of the client tools for a server major (pg_receivewal, pg_basebackup, pg_verifybackup beside pg_dump). */
export async function pgBinDirFor(major: number, pgBinDirs: readonly string[]): Promise<string> {
  const all = await installedPgTools(pgBinDirs);
  const fit = all.filter((t) => t.major >= major).sort((a, b) => a.major - b.major)[0];
  if (!fit) throw new Error(`no PostgreSQL client tools of version ${major} or newer are installed`);
  return dirname(fit.pgDump);
}

export interface SlotState {
  exists: boolean;
  /** `reserved`, `extended`, `unreserved` or `lost` (the server removed WAL the slot needed). */
  walStatus: string | null;
  restartLsn: string | null;
  active: boolean;
  /** Bytes of WAL the slot keeps on the server's disk. */
  retainedBytes: number | null;
}

export interface ServerWal {
  timeline: number;
  segmentSize: number;
  /** `max_slot_wal_keep_size` in MB; -1 is unlimited (a stopped receiver can fill the disk). */
  maxSlotWalKeepMb: number;
  walLevel: string;
  major: number;
}

export async function serverWal(client: pg.Client): Promise<ServerWal> {
  const { rows } = await client.query<{ tli: number; seg: string; keep: string; level: string; num: string }>(
    `SELECT (SELECT timeline_id FROM pg_control_checkpoint()) AS tli,
            current_setting('wal_segment_size') AS seg,
            current_setting('max_slot_wal_keep_size') AS keep,
            current_setting('wal_level') AS level,
            current_setting('server_version_num') AS num`,
  );
  const r = rows[0]!;
  return {
    timeline: r.tli,
    segmentSize: sizeSetting(r.seg),
    maxSlotWalKeepMb: r.keep === "-1" ? -1 : Math.round(sizeSetting(r.keep) / 1024 / 1024),
    walLevel: r.level,
    major: Math.floor(Number(r.num) / 10000),
  };
}

/** `16MB`, `1GB`, `64kB`, `-1` as PostgreSQL prints sizes. */
function sizeSetting(s: string): number {
  const m = /^(-?\d+)\s*(B|kB|MB|GB|TB)?$/.exec(s.trim());
  if (!m) return Number.NaN;
  const mult = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }[(m[2] ?? "B") as "B"];
  return Number(m[1]) * mult;
}

export async function slotState(client: pg.Client, slot: string): Promise<SlotState> {
  const { rows } = await client.query<{ wal_status: string | null; restart_lsn: string | null; active: boolean; retained: string | null }>(
    `SELECT wal_status, restart_lsn::text, active,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const r = rows[0];
  if (!r) return { exists: false, walStatus: null, restartLsn: null, active: false, retainedBytes: null };
  return { exists: true, walStatus: r.wal_status, restartLsn: r.restart_lsn, active: r.active, retainedBytes: r.retained === null ? null : Number(r.retained) };
}

/** Creates the physical slot, reserving WAL from now on; nothing when it exists. */
export async function createSlot(client: pg.Client, slot: string): Promise<void> {
  await client.query("SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", [slot]);
}

/** Drops the slot (after it was lost); its walsender, if any, is ended first. */
export async function dropSlot(client: pg.Client, slot: string): Promise<void> {
  await client.query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL", [slot]);
  for (let i = 0; i < 50; i++) {
    const { rows } = await client.query<{ active: boolean }>("SELECT active FROM pg_replication_slots WHERE slot_name = $1", [slot]);
    if (!rows[0]) return;
    if (!rows[0].active) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await client.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", [slot]);
}

/**
 * What our pg_receivewal has written into its files, as its walsender last heard (status every
 * second): the spool's files hold at least this much once read after the query.
 */
export async function receiverWritePosition(client: pg.Client, slot: string): Promise<string | null> {
  const { rows } = await client.query<{ write_lsn: string | null }>(
    `SELECT r.write_lsn::text FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $1`,
    [slot],
  );
  return rows[0]?.write_lsn ?? null;
}

/**
 * A heartbeat: one empty committed transaction (an xid, a commit record of a few dozen bytes),
 * then the WAL insert position. Every commit that happened before `at` lies before `lsn`, and the
 * heartbeat's own commit (timestamped after `at`) lies before `lsn` too: once the archive holds
 * WAL up to `lsn`, recovery to `at` has a commit after its target and stops exactly there, even on
 * a cluster that is otherwise idle.
 */
export async function walHeartbeat(client: pg.Client): Promise<{ at: Date; lsn: string }> {
  const { rows } = await client.query<{ at: Date }>("SELECT now() AS at, pg_current_xact_id()");
  const pos = await client.query<{ lsn: string }>("SELECT pg_current_wal_insert_lsn()::text AS lsn");
  return { at: rows[0]!.at, lsn: pos.rows[0]!.lsn };
}

/** `pg_receivewal` into `dir` over `slot`; `--no-loop`: the supervisor decides about restarts. */
export function startReceiveWal(binDir: string, conn: ClusterConnection, opts: { slot: string; dir: string; statusIntervalSeconds?: number }): Tool {
  const env = { ...toolEnv(conn, conn.adminDatabase), PGAPPNAME: `capydb-wal-${opts.slot}` };
  return startTool(
    join(binDir, "pg_receivewal"),
    ["-D", opts.dir, "--slot", opts.slot, "--no-loop", "--no-password", "-s", String(opts.statusIntervalSeconds ?? 1), "-v"],
    env,
    { secrets: [conn.password], keepStdout: true },
  );
}

export interface Spool {
  /** Finished segments, in WAL order. */
  finished: string[];
  /** The segment being written (`<name>.partial`), by name without the suffix. */
  partial: string | null;
  history: string[];
}

export async function readSpool(dir: string): Promise<Spool> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const finished = names.filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
  const partials = names.filter((n) => /^[0-9A-F]{24}\.partial$/.test(n)).sort();
  const history = names.filter((n) => /^[0-9A-F]{8}\.history$/.test(n)).sort();
  return { finished, partial: partials.at(-1)?.replace(/\.partial$/, "") ?? null, history };
}

/** A connection for the receiver's SQL (slot, positions, heartbeat). */
export const connectForWal = (conn: ClusterConnection): Promise<pg.Client> => connect(conn, conn.adminDatabase);
