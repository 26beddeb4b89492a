import { constants, deflateRaw, type ZlibOptions } from "node:zlib";

/**
 * One zlib stream (RFC 1950) compressed in parallel, pigz's way: the data is cut into segments,
 * each compressed on its own on libuv's thread pool as raw deflate primed with the 32 KiB before
 * it (so the ratio is that of one stream) and ended with a sync flush, which leaves the pieces
 * byte-aligned and joinable; the last one is finished. The zlib header goes before the first
 * piece and the Adler-32 of all the data after the last, so any zlib reader (pg_restore's) reads
 * the joined pieces as one stream.
 */
export class ParallelDeflate {
  private adler = 1;
  private first = true;
  private dictionary: Buffer | undefined;

  constructor(private readonly level: number) {}

  /**
   * Compresses the next segment (the stream's data, in order; `last` for the final one, which may
   * be empty). Returns the bytes of the stream that encode it, with the header and trailer where
   * they belong. The call order is the stream's order; the promises may settle in any order.
   * `data` is not kept once the promise settles.
   */
  segment(data: Buffer, last: boolean): Promise<Buffer> {
    this.adler = adler32(this.adler, data);
    // An output buffer that holds most segments' whole result (table data compresses 3-6:1): one
    // trip to the thread pool per segment instead of one per 16 KiB of output.
    const opts: ZlibOptions = { level: this.level, chunkSize: OUTPUT_CHUNK, finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH };
    if (this.dictionary) opts.dictionary = this.dictionary;
    const head = this.first ? zlibHeader(this.level) : undefined;
    const trailer = last ? this.adler : undefined;
    this.first = false;
    // A copy: the caller may reuse `data` once this segment is compressed.
    this.dictionary = data.length >= WINDOW ? Buffer.from(data.subarray(data.length - WINDOW)) : joinTail(this.dictionary, data);
    return new Promise((resolve, reject) => {
      deflateRaw(data, opts, (err, out) => {
        if (err) return reject(err);
        if (!head && trailer === undefined) return resolve(out);
        const framed = Buffer.allocUnsafe((head ? 2 : 0) + out.length + (trailer === undefined ? 0 : 4));
        let at = 0;
        if (head) {
          head.copy(framed, 0);
          at = head.length;
        }
        out.copy(framed, at);
        if (trailer !== undefined) framed.writeUInt32BE(trailer, at + out.length);
        resolve(framed);
      });
    });
  }
}

/** deflate's window: a segment is primed with this much of the data before it. */
const WINDOW = 32 * 1024;
const OUTPUT_CHUNK = 512 * 1024;

function joinTail(prev: Buffer | undefined, data: Buffer): Buffer | undefined {
  if (!prev) return data.length ? Buffer.from(data) : undefined;
  const joined = Buffer.concat([prev, data]);
  return joined.subarray(Math.max(0, joined.length - WINDOW));
}

/** RFC 1950's two header bytes: deflate, 32 KiB window, the level's hint, and the check bits. */
function zlibHeader(level: number): Buffer {
  const cmf = 0x78;
  const hint = level < 2 ? 0 : level < 6 ? 1 : level === 6 ? 2 : 3;
  let flg = hint << 6;
  flg += (31 - ((cmf * 256 + flg) % 31)) % 31;
  return Buffer.from([cmf, flg]);
}

/** Adler-32 (RFC 1950) of `buf`, continuing from `adler` (1 for a new stream). */
export function adler32(adler: number, buf: Uint8Array): number {
  let a = adler & 0xffff;
  let b = adler >>> 16;
  const n = buf.length;
  let i = 0;
  while (i < n) {
    // 5552 bytes is the most that can be summed before b could pass 2^32 (zlib's NMAX).
    const end = Math.min(i + 5552, n);
    const end16 = end - 15;
    for (; i < end16; i += 16) {
      a += buf[i]!;
      b += a;
      a += buf[i + 1]!;
      b += a;
      a += buf[i + 2]!;
      b += a;
      a += buf[i + 3]!;
      b += a;
      a += buf[i + 4]!;
      b += a;
      a += buf[i + 5]!;
      b += a;
      a += buf[i + 6]!;
      b += a;
      a += buf[i + 7]!;
      b += a;
      a += buf[i + 8]!;
      b += a;
      a += buf[i + 9]!;
      b += a;
      a += buf[i + 10]!;
      b += a;
      a += buf[i + 11]!;
      b += a;
      a += buf[i + 12]!;
      b += a;
      a += buf[i + 13]!;
      b += a;
      a += buf[i + 14]!;
      b += a;
      a += buf[i + 15]!;
      b += a;
    }
    for (; i < end; i++) {
      a += buf[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}
