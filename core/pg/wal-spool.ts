import { existsSync, readdirSync, watch, type FSWatcher } from "node:fs";
import { chmod, chown, mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_SEGMENT_SIZE, HISTORY_NAME_RE, parseSegmentName, SEGMENT_NAME_RE, segmentName, type SegmentId } from "./lsn.ts";

/**
 * Where a recovery instance's WAL comes from. `fetchSegment` returns the segment's bytes (16 MiB,
 * decompressed) after checking them against the archive's SHA-256; `undefined` when the archive
 * ends before it (the newest WAL is not archived yet); it throws when the segment should be there
 * but is missing or corrupt (a gap, a bad object), which fails the recovery instead of letting it
 * end early at an older time.
 */
export interface WalSource {
  fetchSegment(timeline: number, segment: string, signal: AbortSignal): Promise<Buffer | undefined>;
  /** `<timeline>.history`: undefined when the archive has none (a cluster that never failed over). */
  fetchHistory?(timeline: number, signal: AbortSignal): Promise<Buffer | undefined>;
}

/** The file an ask (`<file>@<pid of the restore_command>`) is for. */
const askedFile = (ask: string): string => ask.replace(/@\d+$/, "");

/**
 * The `restore_command`: a few lines of sh run by the recovery instance's startup process (as
 * the server's user). It asks for a file by creating `req/<file>@<its pid>` (one file per ask, so
 * two asks never merge into one) and waits for the worker's
 * answer in `ready/`: the file itself (moved into place: a rename, no copy), `<file>.absent` (the
 * archive ends before it: exit 1, PostgreSQL's "not found"), or `<file>.failed` (exit 200: above
 * 128, which PostgreSQL treats as fatal, so a bad segment stops recovery rather than ending it
 * early). It also gives up when the worker's process is gone, so an orphan never waits forever.
 */
export function restoreCommandScript(spoolDir: string, workerPid: number): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `#!/bin/sh
# CapyDB recovery instance restore_command: asks the worker for one WAL file ($1) to copy to $2.
spool=${q(spoolDir)}
f="$1"
: > "$spool/req/$f@$$" || exit 200
while :; do
  if [ -f "$spool/ready/$f" ]; then mv -f "$spool/ready/$f" "$2" && exit 0; exit 200; fi
  [ -f "$spool/ready/$f.absent" ] && exit 1
  [ -f "$spool/ready/$f.failed" ] && exit 200
  [ -d /proc/${workerPid} ] || exit 200
  sleep 0.01
done
`;
}

export interface SpoolOptions {
  dir: string;
  source: WalSource;
  /** Segments fetched ahead of the one replay asks for (replay is single-threaded: keep it fed). */
  prefetch: number;
  /** Concurrent fetches. */
  parallel: number;
  owner?: { uid: number; gid: number };
  segmentSize?: number;
}

/**
 * Serves a recovery instance's WAL requests from a `WalSource`, fetching ahead of replay: when
 * replay asks for segment N, N+1..N+prefetch are fetched too (`parallel` at a time) and wait in
 * `ready/`, so replay seldom waits on the network. The first fetch error is kept (`failure`): the
 * instance's exit is then explained by it rather than by PostgreSQL's own words.
 */
export class WalSpool {
  private readonly errors = new Map<string, Error>();
  private readonly requested = new Set<string>();
  /** Files answered with their bytes (moved into `ready/`; the restore_command moves them on). */
  private readonly served = new Set<string>();
  /** The error of the first file replay asked for and could not have (a prefetch failure replay never reached does not count). */
  get failure(): Error | undefined {
    // A request the spool has not scanned yet counts too: when a prefetch already failed, the
    // restore_command finds `<file>.failed` and exits before the scan sees its request.
    try {
      for (const ask of readdirSync(this.req)) this.requested.add(askedFile(ask));
    } catch {
      // the spool's directory is gone: what was scanned is all there is
    }
    for (const name of this.requested) {
      const e = this.errors.get(name);
      if (e) return e;
    }
    return undefined;
  }
  /** Asks seen, files fetched and their bytes, and how long asks waited for files not fetched yet. */
  readonly stats = { requests: 0, fetched: 0, bytes: 0, waitedMs: 0 };
  private readonly ready: string;
  private readonly req: string;
  private readonly started = new Map<string, Promise<void>>();
  /** Files replay asked for before they were ready, and since when (what `stats.waitedMs` adds up). */
  private readonly waiting = new Map<string, number>();
  /** How many times each file was asked for. */
  private readonly asks = new Map<string, number>();
  private readonly queue: string[] = [];
  private running = 0;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private scanning = false;
  private rescan = false;
  private absentFrom: SegmentId | undefined;

  private readonly segmentSize: number;

  constructor(private readonly o: SpoolOptions) {
    this.segmentSize = o.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.ready = join(o.dir, "ready");
    this.req = join(o.dir, "req");
  }

  async start(): Promise<void> {
    for (const d of [this.o.dir, this.ready, this.req]) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      if (this.o.owner) await chown(d, this.o.owner.uid, this.o.owner.gid);
    }
    // inotify wakes the spool at once; the timer covers a missed event.
    this.watcher = watch(this.req, () => void this.scan());
    this.watcher.on("error", () => undefined);
    this.timer = setInterval(() => void this.scan(), 50);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.started.values()]);
  }

  private async scan(): Promise<void> {
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = true;
    try {
      do {
        this.rescan = false;
        const names = await readdir(this.req).catch(() => [] as string[]);
        for (const ask of names) {
          const name = askedFile(ask);
          // Known as requested before its file goes: `failure` must not miss it in between.
          this.requested.add(name);
          await rm(join(this.req, ask), { force: true });
          this.request(name);
        }
      } while (this.rescan);
    } finally {
      this.scanning = false;
    }
  }

  private request(name: string): void {
    this.stats.requests++;
    this.requested.add(name);
    const asks = this.asks.get(name) ?? 0;
    this.asks.set(name, asks + 1);
    const inReady = existsSync(join(this.ready, name));
    // Asked again for a file it already handed over (a restore_command moved it away): PostgreSQL
    // does re-read segments (at the end of recovery, the one holding the checkpoint it starts the
    // new timeline from). Fetched again, or that restore_command would wait for ever. Only a
    // second ask is that: the first ask of a file fetched ahead usually finds it in `ready/` and
    // moves it away before this scan sees the ask, which must not fetch it again.
    if (asks > 0 && this.served.has(name) && !inReady) {
      this.served.delete(name);
      this.started.delete(name);
    }
    if (!this.served.has(name) && !this.waiting.has(name)) this.waiting.set(name, performance.now());
    this.enqueue(name, true);
    this.fetchAhead(name);
    this.pump();
  }

  /**
   * Starts fetching `segment` (the one replay starts from) and the `prefetch` after it before
   * replay asks for them: called while the base backup is still being extracted, so the first
   * segments are ready when the server starts.
   */
  warm(segment: string): void {
    if (!SEGMENT_NAME_RE.test(segment)) throw new Error(`not a WAL segment name: ${segment}`);
    this.enqueue(segment, false);
    this.fetchAhead(segment);
    this.pump();
  }

  /** Queues the `prefetch` segments after `name` (a segment; nothing for other files). */
  private fetchAhead(name: string): void {
    if (!SEGMENT_NAME_RE.test(name)) return;
    const seg = parseSegmentName(name, this.segmentSize);
    for (let i = 1n; i <= BigInt(this.o.prefetch); i++) {
      const n = seg.segno + i;
      // Past the archive's end nothing more is fetched ahead.
      if (this.absentFrom && this.absentFrom.timeline === seg.timeline && n >= this.absentFrom.segno) break;
      this.enqueue(segmentName(seg.timeline, n, this.segmentSize), false);
    }
  }

  private enqueue(name: string, urgent: boolean): void {
    if (this.started.has(name)) return;
    const i = this.queue.indexOf(name);
    if (i >= 0) {
      if (urgent && i > 0) {
        this.queue.splice(i, 1);
        this.queue.unshift(name);
      }
      return;
    }
    if (urgent) this.queue.unshift(name);
    else this.queue.push(name);
  }

  private pump(): void {
    while (this.running < this.o.parallel && this.queue.length) {
      const name = this.queue.shift()!;
      this.running++;
      const p = this.serve(name).finally(() => {
        this.running--;
        this.pump();
      });
      this.started.set(name, p);
    }
  }

  private async serve(name: string): Promise<void> {
    const signal = this.abort.signal;
    let answer: { kind: "file"; bytes: Buffer } | { kind: "absent" } | { kind: "failed" };
    try {
      const seg = SEGMENT_NAME_RE.test(name) ? parseSegmentName(name, this.segmentSize) : undefined;
      let bytes: Buffer | undefined;
      if (seg) bytes = await this.o.source.fetchSegment(seg.timeline, name, signal);
      else if (HISTORY_NAME_RE.test(name))
        bytes = this.o.source.fetchHistory ? await this.o.source.fetchHistory(Number.parseInt(name.slice(0, 8), 16), signal) : undefined;
      else bytes = undefined; // e.g. a .partial or .backup name: the archive serves whole segments only
      if (bytes) {
        this.stats.fetched++;
        this.stats.bytes += bytes.length;
        answer = { kind: "file", bytes };
      } else {
        if (seg && (!this.absentFrom || seg.segno < this.absentFrom.segno)) this.absentFrom = seg;
        answer = { kind: "absent" };
      }
    } catch (err) {
      if (signal.aborted) return;
      this.errors.set(name, err instanceof Error ? err : new Error(String(err)));
      answer = { kind: "failed" };
    }
    if (signal.aborted) return;
    const file = join(this.ready, answer.kind === "file" ? name : `${name}.${answer.kind}`);
    const tmp = join(this.o.dir, `.${name}.tmp`);
    await writeFile(tmp, answer.kind === "file" ? answer.bytes : "", { mode: 0o600 });
    if (this.o.owner) await chown(tmp, this.o.owner.uid, this.o.owner.gid);
    else await chmod(tmp, 0o600);
    await rename(tmp, file);
    const since = this.waiting.get(name);
    if (since !== undefined) {
      this.waiting.delete(name);
      this.stats.waitedMs += performance.now() - since;
    }
    if (answer.kind === "file") this.served.add(name);
  }
}
