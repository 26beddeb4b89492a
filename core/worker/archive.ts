import { createInflate, type Inflate } from "node:zlib";

/**
 * Reads a pg_dump custom-format archive as it streams past and counts the rows of every table's
 * data, so that a backup knows what its artifact holds without a second scan of the customer's
 * tables (`count(*)` beside pg_dump read every table twice).
 *
 * The layout (PostgreSQL's pg_backup_archiver.c / pg_backup_custom.c, archive versions 1.12 to
 * 1.16, i.e. pg_dump 9.6 to 17+): a header ("PGDMP", version, int and offset sizes, format,
 * compression, creation time, names), the table of contents (one entry per object: dump id, tag,
 * description, schema...), then the data blocks: a block type byte (1 = a table's data, 3 = large
 * objects), the entry's dump id, and length-prefixed chunks ending with a zero length. A table's
 * data is its `COPY ... TO stdout` text, compressed as one zlib stream per table when the archive
 * is compressed. In COPY text a row ends with a newline and a newline inside a value is written as
 * `\n`, so the newlines of a table's data are its rows.
 *
 * Anything this reader does not know (a newer archive version, lz4/zstd compression, a malformed
 * stream) makes it give up with a reason instead of guessing: the caller then counts the rows in
 * the dump's snapshot the old way.
 */
export class ArchiveRowCounter {
  /** Why counting is impossible (set once; the counter then ignores further input). */
  unsupported: string | undefined;

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

  // Block state.
  private state: "type" | "id" | "len" | "chunk" | "oid" = "type";
  private blockType = 0;
  private blockTable: string | undefined;
  private chunkLeft = 0;
  private text: CopyText | undefined;
  private inflater: Inflate | undefined;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private waitDrain: Promise<void> | undefined;

  /** Feeds the next bytes of the archive. Never throws: a problem sets `unsupported`. */
  write(chunk: Buffer): void {
    if (this.unsupported || chunk.length === 0) return;
    this.pending.push(chunk);
    this.avail += chunk.length;
    try {
      if (this.phase === "head") this.readHead();
      if (this.phase === "blocks") this.readBlocks();
    } catch (err) {
      this.giveUp(err instanceof Error ? err.message : String(err));
    }
  }

  /** While a table's data inflates slower than it arrives, a promise to await before writing more. */
  drained(): Promise<void> | undefined {
    return this.unsupported ? undefined : this.waitDrain;
  }

  /**
   * After the last byte: every table's row count ("schema.table" -> rows), or undefined with
   * `unsupported` set when the archive could not be read to its end.
   */
  async finish(): Promise<Record<string, number> | undefined> {
    if (!this.unsupported && (this.phase !== "blocks" || this.state !== "type" || this.avail !== 0)) this.giveUp("the archive ended inside a block");
    await Promise.allSettled(this.inflating);
    if (!this.unsupported) {
      for (const [id, table] of this.tableData) if (!this.counts.has(table)) this.giveUp(`the archive holds no data block for ${table} (entry ${id})`);
    }
    if (this.unsupported) return undefined;
    return Object.fromEntries(this.counts);
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
      // A whole header or entry was read: drop its bytes.
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
          this.state = "id";
          break;
        }
        case "id": {
          const id = this.takeInt();
          if (id === undefined) return;
          if (this.blockType === 1) {
            this.blockTable = this.tableData.get(id);
            this.text = this.blockTable === undefined ? undefined : new CopyText();
            if (this.blockTable !== undefined && this.compressed) this.startInflate();
            this.state = "len";
          } else {
            this.blockTable = undefined;
            this.state = "oid";
          }
          break;
        }
        case "oid": {
          // Large objects: an oid, its chunks, ... and oid 0 at the end. Not table rows: skipped.
          const oid = this.takeInt();
          if (oid === undefined) return;
          this.state = oid === 0 ? "type" : "len";
          break;
        }
        case "len": {
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
        case "chunk": {
          if (this.avail === 0) return;
          const head = this.pending[0]!;
          const k = Math.min(head.length, this.chunkLeft);
          const piece = head.subarray(0, k);
          if (k === head.length) this.pending.shift();
          else this.pending[0] = head.subarray(k);
          this.avail -= k;
          this.chunkLeft -= k;
          if (this.blockTable !== undefined) {
            if (this.inflater) {
              // pg_dump writes ~4 KiB chunks: hand zlib fewer, larger writes (each is a trip to the thread pool).
              this.batch.push(piece);
              this.batchBytes += piece.length;
              if (this.batchBytes >= INFLATE_BATCH) this.flushBatch();
            } else {
              this.text!.add(piece);
            }
          }
          if (this.chunkLeft === 0) this.state = "len";
          break;
        }
      }
    }
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

  private endBlock(): void {
    if (this.blockType === 3) {
      this.state = "oid";
      return;
    }
    if (this.blockTable !== undefined) {
      if (this.inflater) {
        this.flushBatch();
        this.inflater.end();
      }
      else this.counts.set(this.blockTable, (this.counts.get(this.blockTable) ?? 0) + this.text!.rows());
    }
    this.inflater = undefined;
    this.state = "type";
  }
}

const NEED_MORE = Symbol("need more bytes");
const INFLATE_BATCH = 256 * 1024;

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
    this.tail = b.length >= 6 ? b.subarray(b.length - 6) : Buffer.concat([this.tail, b]).subarray(-6);
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
