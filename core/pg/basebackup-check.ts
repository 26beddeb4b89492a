import { createHash, type Hash } from "node:crypto";
import { Writable } from "node:stream";

/**
 * Checks a `pg_basebackup -Ft` tar against its backup manifest while it streams past, the checks
 * `pg_verifybackup --no-parse-wal` makes of an extracted copy, without the copy: the manifest's
 * own checksum, every file it lists present with its size and SHA-256, and no file it does not
 * list. Hashing as the bytes go by costs one SHA-256 pass; extracting and re-reading a copy cost
 * the whole backup written to disk and read back after the upload. Write the tar into it, end
 * it, then call `verify()`.
 */
export class TarManifestCheck extends Writable {
  private header = Buffer.alloc(0);
  private left = 0;
  private pad = 0;
  private hash: Hash | undefined;
  private collect: Buffer[] | undefined;
  private path = "";
  private size = 0;
  private ended = false;
  readonly seen = new Map<string, { size: number; sha256: string }>();
  manifest: Buffer | undefined;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      this.feed(chunk);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  private feed(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.left > 0) {
        const part = chunk.subarray(off, off + Math.min(this.left, chunk.length - off));
        this.hash?.update(part);
        this.collect?.push(Buffer.from(part));
        this.left -= part.length;
        off += part.length;
        if (this.left === 0) this.finishFile();
        continue;
      }
      if (this.pad > 0) {
        const take = Math.min(this.pad, chunk.length - off);
        this.pad -= take;
        off += take;
        continue;
      }
      const take = Math.min(512 - this.header.length, chunk.length - off);
      this.header = this.header.length ? Buffer.concat([this.header, chunk.subarray(off, off + take)]) : Buffer.from(chunk.subarray(off, off + take));
      off += take;
      if (this.header.length === 512) this.startEntry();
    }
  }

  private startEntry(): void {
    const h = this.header;
    this.header = Buffer.alloc(0);
    if (h.every((b) => b === 0)) {
      this.ended = true; // end-of-archive marker; what follows is padding
      return;
    }
    const name = str(h.subarray(0, 100));
    const prefix = h.subarray(257, 263).toString("latin1").startsWith("ustar") ? str(h.subarray(345, 500)) : "";
    const size = num(h.subarray(124, 136));
    const type = String.fromCharCode(h[156]!);
    const padded = Math.ceil(size / 512) * 512;
    this.pad = padded - size;
    if (type === "5" || type === "2") {
      // Directories, and symbolic links (pg_wal with -X none is a directory; links carry no bytes).
      this.pad = padded;
      return;
    }
    if (type !== "0" && type !== "\0") throw new Error(`the base backup holds a tar entry of unsupported type ${JSON.stringify(type)} (${name})`);
    this.path = (prefix ? `${prefix}/${name}` : name).replace(/^\.\//, "");
    this.size = size;
    if (this.path === "backup_manifest") this.collect = [];
    else this.hash = createHash("sha256");
    this.left = size;
    if (size === 0) this.finishFile();
  }

  private finishFile(): void {
    if (this.collect) this.manifest = Buffer.concat(this.collect);
    else this.seen.set(this.path, { size: this.size, sha256: this.hash!.digest("hex") });
    this.collect = undefined;
    this.hash = undefined;
  }

  /** Throws naming the first difference; answers the manifest's WAL range and how many files were checked. */
  verify(): { files: number; walRanges: { Timeline: number; "Start-LSN": string; "End-LSN": string }[] } {
    if (this.left > 0 || this.header.length) throw new Error("the base backup's tar is cut short");
    if (!this.manifest) throw new Error("the base backup has no backup_manifest: it cannot be checked");
    const text = this.manifest.toString("utf8");
    const at = text.lastIndexOf('"Manifest-Checksum"');
    const want = /"Manifest-Checksum"\s*:\s*"([0-9a-fA-F]{64})"/.exec(text.slice(at))?.[1];
    if (at < 0 || !want) throw new Error("the backup manifest has no Manifest-Checksum");
    if (
      createHash("sha256")
        .update(this.manifest.subarray(0, Buffer.byteLength(text.slice(0, at))))
        .digest("hex") !== want.toLowerCase()
    )
      throw new Error("the backup manifest's own checksum does not match: the manifest is corrupt");
    const manifest = JSON.parse(text) as {
      Files: { Path?: string; "Encoded-Path"?: string; Size: number; "Checksum-Algorithm"?: string; Checksum?: string }[];
      "WAL-Ranges"?: { Timeline: number; "Start-LSN": string; "End-LSN": string }[];
    };
    const listed = new Set<string>();
    for (const f of manifest.Files) {
      const path = f.Path ?? Buffer.from(f["Encoded-Path"] ?? "", "hex").toString("utf8");
      listed.add(path);
      const got = this.seen.get(path);
      if (!got) throw new Error(`the base backup is missing ${path}, which its manifest lists`);
      if (got.size !== f.Size) throw new Error(`the base backup's ${path} has ${got.size} bytes, its manifest says ${f.Size}`);
      if (f["Checksum-Algorithm"] !== "SHA256" || !f.Checksum) throw new Error(`the manifest records no SHA-256 for ${path}`);
      if (got.sha256 !== f.Checksum.toLowerCase()) throw new Error(`the base backup's ${path} does not match its manifest's SHA-256`);
    }
    // pg_verifybackup's own exceptions: files pg_basebackup may write or change after the manifest.
    const unlisted = [...this.seen.keys()].filter((p) => !listed.has(p) && !["postgresql.auto.conf", "standby.signal", "recovery.signal"].includes(p));
    if (unlisted.length) throw new Error(`the base backup holds ${unlisted[0]}, which its manifest does not list`);
    return { files: listed.size, walRanges: manifest["WAL-Ranges"] ?? [] };
  }
}

const str = (field: Buffer): string => {
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString("utf8");
};

/** A ustar number: octal text, or base-256 (high bit set) for sizes over 8 GiB. */
function num(field: Buffer): number {
  if (field[0]! & 0x80) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString("latin1").replace(/\0.*$/s, "").trim();
  return text ? Number.parseInt(text, 8) : 0;
}
