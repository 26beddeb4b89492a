/**
 * Write-ahead log positions and file names, PostgreSQL's way: an LSN is a 64-bit byte position
 * printed as two hex halves (`16/B374D848`); a segment file is named by its timeline and its
 * segment number (`000000010000001600000000` = timeline 1, log 0x16, segment 0 of that log), the
 * number being LSN / segment size. Pure functions, in the engine because PostgreSQL defines
 * them: the receiver and the window above it, and the recovery instance's WAL spool here
 * (restore_command asks for files by these names), all speak them.
 */

/** PostgreSQL's default `wal_segment_size`; the real one is read from the server and recorded. */
export const DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024;

const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;
/** `TTTTTTTTXXXXXXXXYYYYYYYY`: timeline, then the segment number split in two halves. */
export const SEGMENT_NAME_RE = /^[0-9A-F]{24}$/;
/** A timeline's history file, written when a server is promoted (`00000002.history`). */
export const HISTORY_NAME_RE = /^[0-9A-F]{8}\.history$/;

export function isLsn(s: string): boolean {
  return LSN_RE.test(s);
}

export function parseLsn(s: string): bigint {
  const m = LSN_RE.exec(s);
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(s)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(n: bigint): string {
  return `${(n >> 32n).toString(16).toUpperCase()}/${(n & 0xffffffffn).toString(16).toUpperCase()}`;
}

export const compareLsn = (a: string, b: string): number => {
  const d = parseLsn(a) - parseLsn(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};

export const maxLsn = (a: string, b: string): string => (compareLsn(a, b) >= 0 ? a : b);

/** Segments per 4 GiB "log" (the middle 8 hex digits of a name). */
const segmentsPerLog = (segmentSize: number): bigint => 0x100000000n / BigInt(segmentSize);

export interface SegmentId {
  timeline: number;
  /** Segment number: the segment's first byte is `segno * segment size`. */
  segno: bigint;
}

export function segmentName(timeline: number, segno: bigint, segmentSize = DEFAULT_SEGMENT_SIZE): string {
  const per = segmentsPerLog(segmentSize);
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, "0");
  return `${hex(timeline)}${hex(segno / per)}${hex(segno % per)}`;
}

export function parseSegmentName(name: string, segmentSize = DEFAULT_SEGMENT_SIZE): SegmentId {
  if (!SEGMENT_NAME_RE.test(name)) throw new Error(`not a WAL segment name: ${JSON.stringify(name)}`);
  const timeline = Number.parseInt(name.slice(0, 8), 16);
  const log = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16, 24)}`);
  return { timeline, segno: log * segmentsPerLog(segmentSize) + seg };
}

export const timelineHex = (timeline: number): string => timeline.toString(16).toUpperCase().padStart(8, "0");

/** The segment that holds the byte at `lsn`. */
export const segnoOf = (lsn: string, segmentSize = DEFAULT_SEGMENT_SIZE): bigint => parseLsn(lsn) / BigInt(segmentSize);

/** First byte of a segment, and first byte after it. */
export function segmentBounds(segno: bigint, segmentSize = DEFAULT_SEGMENT_SIZE): { start: string; end: string } {
  const size = BigInt(segmentSize);
  return { start: formatLsn(segno * size), end: formatLsn((segno + 1n) * size) };
}
