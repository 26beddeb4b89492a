import { Readable } from "node:stream";
import { createInflate, type Inflate } from "node:zlib";
import { WorkerFailure } from "./classify.ts";
import { ParallelDeflate } from "./deflate.ts";

/**
 * Reads a pg_dump custom-format archive as it streams past: counts the rows of every table's data,
 * so that a backup knows what its artifact holds without a second scan of the customer's tables
 * (`count(*)` beside pg_dump read every table twice), and, given an uncompressed archive
 * (`pg_dump --compress=0`), compresses it on the way, so pg_dump's single thread only reads.
 *
 * The layout (PostgreSQL's pg_backup_archiver.c / pg_backup_custom.c, archive versions 1.12 to
 * 1.16, i.e. pg_dump 9.6 to 17+): a header ("PGDMP", version, int and offset sizes, format,
 * compression, creation time, names), the table of contents (one entry per object: dump id, tag,
 * description, schema...), then the data blocks: a block type byte (1 = a table's data, 3 = large
 * objects), the entry's dump id, and length-prefixed chunks ending with a zero length (large
 * objects: an oid before each object's chunks, and oid 0 after the last). A table's data is its
 * `COPY ... TO stdout` text, one zlib stream per table (and per large object) when the archive is
 * compressed. In COPY text a row ends with a newline and a newline inside a value is written as
 * `\n`, so the newlines of a table's data are its rows.
 *
 * Compressing rewrites exactly what pg_dump would have written with --compress: the header's
 * compression field, and each data stream as zlib chunks (ParallelDeflate: pigz-style, on the
 * thread pool); every other byte passes unchanged, so the result is a standard archive that
 * `pg_restore` reads as it would pg_dump's own.
 *
 * Anything this reader does not know (a newer archive version, lz4/zstd compression, a malformed
 * stream) makes it give up with a reason instead of guessing: the caller then counts the rows in
 * the dump's snapshot the old way. While it compresses, the output waits for the whole table of
 * contents, so a header it cannot read leaves the bytes unchanged (an uncompressed archive) rather
 * than half rewritten; a problem after that fails the stream (`failure`).
 */
export class ArchiveReader {
  /** Why counting is impossible (set once; the counter then ignores further input). */
  unsupported: string | undefined;
  /** Set when a compressed output can no longer be made: the stream must fail. */
  failure: WorkerFailure | undefined;

  private pending: Buffer[] = [];
  private avail = 0;
  private phase: "head" | "blocks" = "head";
  private intSize = 4;
  private offSize = 8;
  private version = 0;
  private compressed = false;
  /** dump id -> "schema.table" of every TABLE DATA entry in the table of contents. */
  private tableData = new Map<number, string>();
  private tocLeft = -1;
  private counts = new Map<string, number>();
  private inflating: Promise<void>[] = [];
  private ended = false;

  // Output: "pass" emits every byte as it arrives; "hold" keeps the header and table of contents
  // until it is known whether to compress; "compress" rewrites the data blocks.
  private mode: "hold" | "compress" | "pass";
  private held: Buffer[] = [];
  private compressionAt = -1;
  private small: Buffer[] = [];

  // Block state.
  private state: "type" | "id" | "len" | "chunk" | "oid" = "type";
  private blockType = 0;
  private blockTable: string | undefined;
  private chunkLeft = 0;
  private text: CopyText | undefined;
  private data: BlockData | undefined;
  private segments = new SegmentPool();
  private inflater: Inflate | undefined;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private waitDrain: Promise<void> | undefined;

  /**
   * `emit` receives the archive to store, in order: buffers, and promises of compressed chunks.
   * `compressLevel` 1-9 compresses an uncompressed archive; 0 (default) passes the bytes unchanged.
   */
  constructor(
    private readonly emit: (out: Buffer | Promise<Buffer>) => void = () => undefined,
    private readonly compressLevel = 0,
  ) {
    this.mode = compressLevel > 0 ? "hold" : "pass";
  }

  /** Feeds the next bytes of the archive. Never throws: a problem sets `unsupported` (and `failure` when the output cannot be made). */
  write(chunk: Buffer): void {
    if (chunk.length === 0 || this.failure) return;
    if (this.mode === "pass") {
      this.emit(chunk);
      if (this.unsupported) return;
    }
    this.pending.push(chunk);
    this.avail += chunk.length;
    try {
      if (this.phase === "head") this.readHead();
      if (this.phase === "blocks") this.readBlocks();
    } catch (err) {
      this.problem(err instanceof Error ? err.message : String(err));
    }
    this.flushSmall();
  }

  /** While a table's data inflates slower than it arrives, a promise to await before writing more. */
  drained(): Promise<void> | undefined {
    return this.unsupported ? undefined : this.waitDrain;
  }

  /** After the last byte: completes the output (or sets `failure`). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.failure) return;
    if (!this.unsupported && (this.phase !== "blocks" || this.state !== "type" || this.avail !== 0)) {
      // Cut short: pg_dump died or was stopped mid-archive, which a retry may not meet again.
      this.problem(this.phase === "head" ? "the archive ended inside its header" : "the archive ended inside a block", "transient");
    }
    this.flushSmall();
  }

  /**
   * After the last byte: every table's row count ("schema.table" -> rows), or undefined with
   * `unsupported` set when the archive could not be read to its end.
   */
  async finish(): Promise<Record<string, number> | undefined> {
    this.end();
    await Promise.allSettled(this.inflating);
    if (!this.unsupported) {
      for (const [id, table] of this.tableData) if (!this.counts.has(table)) this.giveUp(`the archive holds no data block for ${table} (entry ${id})`);
    }
    if (this.unsupported) return undefined;
    return Object.fromEntries(this.counts);
  }

  /** `permanent` by default: an archive this reader cannot follow, which a retry would read the same. */
  private problem(reason: string, classification: "permanent" | "transient" = "permanent"): void {
    if (this.mode === "hold") this.passFromHere();
    else if (this.mode === "compress") this.failure ??= new WorkerFailure(classification, `pg_dump's archive could not be compressed: ${reason}`);
    this.giveUp(reason);
  }

  private giveUp(reason: string): void {
    this.unsupported ??= reason;
    this.pending = [];
    this.avail = 0;
    this.inflater?.destroy();
    this.inflater = undefined;
    this.batch = [];
    this.batchBytes = 0;
    this.waitDrain = undefined;
  }

  /** The header and table of contents are read: compress what follows, or (a compressed archive) let it pass. */
  private decide(): void {
    if (this.mode !== "hold") return;
    if (this.compressed) {
      this.passFromHere();
      return;
    }
    const head = Buffer.concat(this.held);
    this.held = [];
    if (this.version >= 115)
      head[this.compressionAt] = 1; // gzip
    else this.encodeInt(this.compressLevel).copy(head, this.compressionAt);
    this.mode = "compress";
    this.emit(head);
  }

  /** Emits every byte held and not yet read, unchanged; from now on bytes pass as they arrive. */
  private passFromHere(): void {
    this.emit(Buffer.concat([...this.held, ...this.pending]));
    this.held = [];
    this.mode = "pass";
  }

  /** Bytes of the archive that pass unchanged while it is rewritten. */
  private verbatim(b: Buffer): void {
    if (this.mode === "compress") this.small.push(b);
  }

  private flushSmall(): void {
    if (this.small.length === 0) return;
    this.emit(this.small.length === 1 ? this.small[0]! : Buffer.concat(this.small));
    this.small = [];
  }

  private emitChunk(compressed: Promise<Buffer>): void {
    this.flushSmall();
    const framed = compressed.then((c) => Buffer.concat([this.encodeInt(c.length), c]));
    framed.catch(() => undefined); // awaited in order by the consumer; never an unhandled rejection meanwhile
    this.emit(framed);
  }

  // ---- bytes -------------------------------------------------------------------------------

  /** The next `n` bytes, consumed; undefined (nothing consumed) until that many have arrived. */
  private take(n: number): Buffer | undefined {
    if (this.avail < n) return undefined;
    const head = this.pending[0]!;
    let out: Buffer;
    if (head.length >= n) {
      out = head.subarray(0, n);
      if (head.length === n) this.pending.shift();
      else this.pending[0] = head.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let o = 0;
      while (o < n) {
        const b = this.pending[0]!;
        const k = Math.min(b.length, n - o);
        b.copy(out, o, 0, k);
        o += k;
        if (k === b.length) this.pending.shift();
        else this.pending[0] = b.subarray(k);
      }
    }
    this.avail -= n;
    return out;
  }

  /** pg_dump's WriteInt: a sign byte, then `intSize` bytes, least significant first. */
  private decodeInt(b: Buffer, at: number): number {
    let v = 0;
    for (let i = this.intSize - 1; i >= 0; i--) v = v * 256 + b[at + 1 + i]!;
    return b[at] ? -v : v;
  }

  private encodeInt(v: number): Buffer {
    const b = Buffer.alloc(1 + this.intSize);
    b[0] = v < 0 ? 1 : 0;
    let n = Math.abs(v);
    for (let i = 0; i < this.intSize; i++) {
      b[1 + i] = n % 256;
      n = Math.floor(n / 256);
    }
    return b;
  }

  private takeInt(): number | undefined {
    const b = this.take(1 + this.intSize);
    return b ? this.decodeInt(b, 0) : undefined;
  }

  // ---- header and table of contents --------------------------------------------------------

  /**
   * Parses the header and the table of contents from one buffer. They are small; a table of
   * contents read in pieces resumes at the last whole entry (no re-parse from the start).
   */
  private readHead(): void {
    for (;;) {
      const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
      this.pending = [buf];
      let p = 0;
      const need = (n: number) => {
        if (p + n > buf.length) throw NEED_MORE;
      };
      const byte = () => {
        need(1);
        return buf[p++]!;
      };
      const int = () => {
        need(1 + this.intSize);
        const v = this.decodeInt(buf, p);
        p += 1 + this.intSize;
        return v;
      };
      const str = (): string | null => {
        const len = int();
        if (len < 0) return null;
        need(len);
        const s = buf.toString("utf8", p, p + len);
        p += len;
        return s;
      };
      try {
        if (this.tocLeft < 0) {
          need(5);
          if (buf.toString("latin1", 0, 5) !== "PGDMP") throw new Error("not a pg_dump archive (no PGDMP header)");
          p = 5;
          const [vmaj, vmin] = [byte(), byte()];
          byte(); // revision
          this.version = vmaj * 100 + vmin;
          if (vmaj !== 1 || vmin < 12 || vmin > 16) throw new Error(`archive version ${vmaj}.${vmin} is not one this reader knows (1.12-1.16)`);
          this.intSize = byte();
          this.offSize = byte();
          if (this.intSize < 1 || this.intSize > 8 || this.offSize < 1 || this.offSize > 8) throw new Error("implausible integer sizes in the archive header");
          const format = byte();
          if (format !== 1) throw new Error(`archive format ${format} is not custom (1)`);
          this.compressionAt = p;
          if (this.version >= 115) {
            const algorithm = byte(); // 0 none, 1 gzip, 2 lz4, 3 zstd
            if (algorithm > 1) throw new Error(`archive compression ${["none", "gzip", "lz4", "zstd"][algorithm] ?? algorithm} is not readable here`);
            this.compressed = algorithm === 1;
          } else {
            this.compressed = int() !== 0; // zlib level
          }
          for (let i = 0; i < 7; i++) int(); // creation time
          str(); // database name
          str(); // server version
          str(); // pg_dump version
          const entries = int();
          if (entries < 0) throw new Error("negative entry count in the archive");
          this.tocLeft = entries;
        } else if (this.tocLeft === 0) {
          this.phase = "blocks";
          if (this.avail === 0) this.pending = [];
          this.decide();
          return;
        } else {
          const id = int();
          int(); // had a data dumper
          str(); // table oid
          str(); // oid
          const tag = str();
          const desc = str();
          int(); // section
          str(); // definition
          str(); // drop statement
          str(); // copy statement
          const namespace = str();
          str(); // tablespace
          if (this.version >= 114) str(); // table access method
          if (this.version >= 116) int(); // relkind
          str(); // owner
          str(); // "false" (with oids)
          while (str() !== null); // dependencies
          need(1 + this.offSize); // data offset (the custom format's extra field)
          p += 1 + this.offSize;
          if (desc === "TABLE DATA" && tag !== null) this.tableData.set(id, `${namespace ?? ""}.${tag}`);
          this.tocLeft--;
        }
      } catch (err) {
        if (err === NEED_MORE) return;
        throw err;
      }
      // A whole header or entry was read: drop its bytes (held while the output waits for them).
      if (this.mode === "hold") this.held.push(buf.subarray(0, p));
      this.pending = [buf.subarray(p)];
      this.avail = buf.length - p;
    }
  }

  // ---- data blocks -------------------------------------------------------------------------

  private readBlocks(): void {
    for (;;) {
      switch (this.state) {
        case "type": {
          const b = this.take(1);
          if (!b) return;
          this.blockType = b[0]!;
          if (this.blockType !== 1 && this.blockType !== 3) throw new Error(`unknown block type ${this.blockType} in the archive`);
          this.verbatim(b);
          this.state = "id";
          break;
        }
        case "id": {
          const id = this.take(1 + this.intSize);
          if (!id) return;
          this.verbatim(id);
          if (this.blockType === 1) {
            this.blockTable = this.tableData.get(this.decodeInt(id, 0));
            this.text = this.blockTable === undefined ? undefined : new CopyText();
            this.startData();
            this.state = "len";
          } else {
            this.blockTable = undefined;
            this.state = "oid";
          }
          break;
        }
        case "oid": {
          // Large objects: an oid, its chunks, ... and oid 0 at the end. Not table rows: not counted.
          const oid = this.take(1 + this.intSize);
          if (!oid) return;
          this.verbatim(oid);
          if (this.decodeInt(oid, 0) === 0) {
            this.state = "type";
          } else {
            this.text = undefined;
            this.startData();
            this.state = "len";
          }
          break;
        }
        case "len":
        case "chunk": {
          if (this.data) {
            if (!this.readRaw()) return;
            break;
          }
          if (this.state === "len") {
            const len = this.takeInt();
            if (len === undefined) return;
            if (len < 0) throw new Error("negative chunk length in the archive");
            if (len > 0) {
              this.chunkLeft = len;
              this.state = "chunk";
            } else {
              this.endBlock();
            }
            break;
          }
          if (this.avail === 0) return;
          const head = this.pending[0]!;
          const k = Math.min(head.length, this.chunkLeft);
          const piece = head.subarray(0, k);
          if (k === head.length) this.pending.shift();
          else this.pending[0] = head.subarray(k);
          this.avail -= k;
          this.chunkLeft -= k;
          if (this.inflater) {
            // pg_dump writes ~4 KiB chunks: hand zlib fewer, larger writes (each is a trip to the thread pool).
            this.batch.push(piece);
            this.batchBytes += piece.length;
            if (this.batchBytes >= INFLATE_BATCH) this.flushBatch();
          }
          if (this.chunkLeft === 0) this.state = "len";
          break;
        }
      }
    }
  }

  /** A data stream begins (a table's data, or one large object's). */
  private startData(): void {
    if (this.compressed) {
      if (this.text) this.startInflate();
      return;
    }
    const deflate = this.mode === "compress" ? new ParallelDeflate(this.compressLevel) : undefined;
    this.data = new BlockData(this.text, deflate, (c) => this.emitChunk(c), this.segments);
  }

  /**
   * The chunks of an uncompressed data stream. Without compression pg_dump writes one chunk per row
   * (a length, then the row), so this runs over whole buffers, copying rows into the stream's
   * segments without a Buffer per row. Returns false when it needs more bytes; true when the stream
   * ended (a zero length).
   */
  private readRaw(): boolean {
    const w = 1 + this.intSize;
    const data = this.data!;
    while (this.avail > 0) {
      const head = this.pending[0]!;
      const n = head.length;
      let at = 0;
      let ended = false;
      while (at < n) {
        if (this.state === "chunk") {
          const k = Math.min(n - at, this.chunkLeft);
          data.add(head, at, at + k);
          at += k;
          this.chunkLeft -= k;
          if (this.chunkLeft === 0) this.state = "len";
          continue;
        }
        if (n - at < w) break;
        const len = this.decodeInt(head, at);
        at += w;
        if (len < 0) throw new Error("negative chunk length in the archive");
        if (len === 0) {
          ended = true;
          break;
        }
        this.chunkLeft = len;
        this.state = "chunk";
      }
      if (at === n) this.pending.shift();
      else this.pending[0] = head.subarray(at);
      this.avail -= at;
      if (ended) {
        this.endBlock();
        return true;
      }
      if (at < n) {
        // A length split between two buffers.
        const len = this.takeInt();
        if (len === undefined) return false;
        if (len < 0) throw new Error("negative chunk length in the archive");
        if (len === 0) {
          this.endBlock();
          return true;
        }
        this.chunkLeft = len;
        this.state = "chunk";
      }
    }
    return false;
  }

  private flushBatch(): void {
    if (!this.inflater || this.batchBytes === 0) return;
    const data = this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch, this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    if (!this.inflater.write(data)) this.waitDrain ??= onceDrained(this.inflater).finally(() => (this.waitDrain = undefined));
  }

  private startInflate(): void {
    const table = this.blockTable!;
    const inflater = createInflate({ chunkSize: 256 * 1024 });
    this.inflater = inflater;
    const text = this.text!;
    inflater.on("data", (d: Buffer) => text.add(d));
    this.inflating.push(
      new Promise<void>((resolve) => {
        inflater.once("end", () => {
          this.counts.set(table, (this.counts.get(table) ?? 0) + text.rows());
          resolve();
        });
        inflater.once("error", (err) => {
          this.giveUp(`the data of ${table} did not inflate: ${err.message}`);
          resolve();
        });
        inflater.once("close", resolve);
      }),
    );
  }

  /** A zero length: the end of a table's data, or of one large object's. */
  private endBlock(): void {
    if (this.data) {
      this.data.end();
      this.data = undefined;
      this.verbatim(this.encodeInt(0));
    } else if (this.inflater) {
      this.flushBatch();
      this.inflater.end();
      this.inflater = undefined;
    }
    if (this.blockTable !== undefined && !this.compressed) this.counts.set(this.blockTable, (this.counts.get(this.blockTable) ?? 0) + this.text!.rows());
    this.state = this.blockType === 3 ? "oid" : "type";
  }
}

const NEED_MORE = Symbol("need more bytes");
const INFLATE_BATCH = 256 * 1024;
/** The data is compressed in segments of this size (the unit of parallel work and of memory). */
const SEGMENT = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/** Segment buffers for reuse: a dump allocates a few, not one per MiB of data (memory stays flat). */
class SegmentPool {
  private free: Buffer[] = [];
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(SEGMENT);
  }
  release(b: Buffer): void {
    if (this.free.length < IN_FLIGHT + 2) this.free.push(b);
  }
}

/**
 * An uncompressed data stream, gathered into segments: each is counted (a table's rows) and, when
 * compressing, handed to ParallelDeflate, whose chunks go out in order.
 */
class BlockData {
  private seg: Buffer | undefined;
  private len = 0;

  constructor(
    private readonly text: CopyText | undefined,
    private readonly deflate: ParallelDeflate | undefined,
    private readonly out: (compressed: Promise<Buffer>) => void,
    private readonly pool: SegmentPool,
  ) {}

  add(src: Buffer, start: number, end: number): void {
    if (!this.deflate && !this.text) return;
    while (start < end) {
      this.seg ??= this.pool.take();
      const k = Math.min(end - start, SEGMENT - this.len);
      src.copy(this.seg, this.len, start, start + k);
      this.len += k;
      start += k;
      if (this.len === SEGMENT) this.cut(false);
    }
  }

  end(): void {
    this.cut(true);
  }

  private cut(last: boolean): void {
    const seg = this.seg;
    const data = seg ? seg.subarray(0, this.len) : EMPTY;
    this.text?.add(data);
    if (this.deflate) {
      if (data.length > 0 || last) {
        const compressed = this.deflate.segment(data, last);
        this.out(compressed);
        // The compression holds the segment until it is done; then the next one can use it.
        if (seg)
          compressed.then(
            () => this.pool.release(seg),
            () => undefined,
          );
      }
      this.seg = undefined;
    }
    this.len = 0;
  }
}

/**
 * One table's COPY text: its rows are its newlines, less the end-of-data marker `\.` and the two
 * blank lines pg_dump (up to 17 at least) writes after the rows. A row can never be `\.` alone
 * (a backslash in a value is written doubled), so the marker is told from data by the newline
 * before it.
 */
class CopyText {
  private newlines = 0;
  private bytes = 0;
  private tail: Buffer = Buffer.alloc(0);

  add(b: Buffer): void {
    this.newlines += countNewlines(b);
    this.bytes += b.length;
    // A copy: the caller may reuse `b`.
    this.tail = Buffer.from(b.length >= 6 ? b.subarray(b.length - 6) : Buffer.concat([this.tail, b]).subarray(-6));
  }

  rows(): number {
    const t = this.tail.toString("latin1");
    const marker = this.bytes === 5 ? t === "\\.\n\n\n" : t === "\n\\.\n\n\n";
    return marker ? this.newlines - 3 : this.newlines;
  }
}

function onceDrained(stream: Inflate): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.once("drain", done);
    stream.once("close", done);
  });
}

/** Newline (0x0a) bytes in `b`. */
export function countNewlines(b: Buffer): number {
  let n = 0;
  let i = b.indexOf(10);
  while (i !== -1) {
    n++;
    i = b.indexOf(10, i + 1);
  }
  return n;
}

/** At most this many segments are compressing at once (libuv's pool has 4 threads by default). */
const IN_FLIGHT = 4;

/**
 * The archive as it should be stored: `source` (pg_dump's stdout) through an ArchiveReader, as a
 * stream with backpressure. Compressed chunks go out in order, at most IN_FLIGHT compressing at
 * once; the reader's row counts are read from `reader.finish()` once the stream has ended.
 */
export function storedArchive(source: AsyncIterable<Buffer>, compressLevel: number): { reader: ArchiveReader; archive: Readable } {
  const queue: (Buffer | Promise<Buffer>)[] = [];
  let compressing = 0;
  const reader = new ArchiveReader((out) => {
    queue.push(out);
    if (out instanceof Promise) compressing++;
  }, compressLevel);
  const next = (): Buffer | Promise<Buffer> => {
    const out = queue.shift()!;
    if (out instanceof Promise) compressing--;
    return out;
  };
  async function* run(): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      reader.write(chunk);
      if (reader.failure) throw reader.failure;
      await reader.drained();
      while (queue.length > 0 && (compressing >= IN_FLIGHT || !(queue[0] instanceof Promise))) yield await next();
    }
    reader.end();
    if (reader.failure) throw reader.failure;
    while (queue.length > 0) yield await next();
  }
  return { reader, archive: Readable.from(run(), { objectMode: false }) };
}
