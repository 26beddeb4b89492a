import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { CliError, exitCodes } from "./errors.ts";

/** What the API's download endpoints answer: a signed URL and what the bytes must be. */
export interface DownloadInfo {
  download_url: string;
  expires_at: string;
  size_bytes: number;
  sha256: string;
}

export interface DownloadResult {
  file: string;
  size_bytes: number;
  sha256: string;
}

export interface DownloadOptions {
  /** Called as bytes arrive (for the progress line on a terminal). */
  onProgress?(received: number, total: number): void;
  /** Called with the temporary file's path once it exists, so an interrupt handler can remove it. */
  onTempFile?(path: string): void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

/**
 * Where `-o` points: a file, or an existing directory to put `<id>.dump` in; absent, `<id>.dump`
 * in the working directory.
 */
export async function downloadTarget(output: string | undefined, id: string): Promise<string> {
  const name = `${id}.dump`;
  if (!output) return resolve(name);
  const isDir = await stat(output).then(
    (s) => s.isDirectory(),
    () => false,
  );
  return resolve(isDir ? join(output, name) : output);
}

/**
 * Streams the signed URL into a temporary file beside `target` (same directory, so the final
 * rename is atomic), hashing as it writes, and renames it into place only when both the size and
 * the SHA-256 match what the API said. On any failure the temporary file is removed: nothing is
 * ever left under the final name that is not the complete, checked artifact. The file is created
 * private (0600): it holds the customer's data.
 */
export async function downloadToFile(info: DownloadInfo, target: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString("hex")}.partial`);
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(info.download_url, { signal: opts.signal });
  } catch (err) {
    const reason = (err as { cause?: { code?: string } })?.cause?.code ?? (err instanceof Error ? err.message : String(err));
    throw new CliError(`could not download from object storage (${reason}); nothing was written`, exitCodes.error, { cause: err });
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    const expired = res.status === 403 && Date.parse(info.expires_at) <= Date.now();
    throw new CliError(
      `object storage answered HTTP ${res.status}${expired ? ": the signed link expired (it lasts 15 minutes); run the command again for a new one" : ""}; nothing was written`,
    );
  }

  // Created exclusively and private (it holds the customer's data); flushed to disk before it is closed.
  const out = createWriteStream(temp, { flags: "wx", mode: 0o600, flush: true });
  opts.onTempFile?.(temp);
  const hash = createHash("sha256");
  let received = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      received += chunk.length;
      opts.onProgress?.(received, info.size_bytes);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), meter, out, { signal: opts.signal });
    if (received !== info.size_bytes) {
      throw new CliError(`download incomplete: received ${received} of ${info.size_bytes} bytes; nothing was kept, run the command again`);
    }
    const sha256 = hash.digest("hex");
    if (sha256 !== info.sha256) {
      throw new CliError(`download corrupt: its SHA-256 is ${sha256}, the API recorded ${info.sha256}; nothing was kept, run the command again`);
    }
    await rename(temp, target);
    return { file: target, size_bytes: received, sha256 };
  } catch (err) {
    await rm(temp, { force: true });
    if (err instanceof CliError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new CliError(`download failed after ${received} of ${info.size_bytes} bytes (${reason}); nothing was kept, run the command again`, exitCodes.error, {
      cause: err,
    });
  }
}
