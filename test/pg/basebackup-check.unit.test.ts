import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { TarManifestCheck } from "../../core/pg/basebackup-check.ts";

/** The streaming manifest check of a base backup's tar (pg_verifybackup's checks, no extracted copy). */
const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

function entry(name: string, body: Buffer, type = "0"): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, "utf8");
  h.write(body.length.toString(8).padStart(11, "0") + "\0", 124, "latin1");
  h.write(type, 156, "latin1");
  h.write("ustar\0", 257, "latin1");
  const pad = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([h, body, pad]);
}

function manifestFor(files: Record<string, Buffer>, opts: { lie?: string } = {}): Buffer {
  const list = Object.entries(files).map(([p, b]) => ({
    Path: p,
    Size: b.length,
    "Last-Modified": "2026-12-06 00:00:00 GMT",
    "Checksum-Algorithm": "SHA256",
    Checksum: sha(b),
  }));
  if (opts.lie) list.find((f) => f.Path === opts.lie)!.Size += 1;
  const body = `{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n${list.map((f) => JSON.stringify(f)).join(",\n")} ],\n"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n],\n`;
  const checksum = sha(opts.lie ? body.replace(/"Size":\d+/, '"Size":0') : body);
  return Buffer.from(`${body}"Manifest-Checksum": "${checksum}"}\n`);
}

const files = { PG_VERSION: Buffer.from("15\n"), "base/1/1259": Buffer.alloc(20_000, 7), "global/pg_control": Buffer.alloc(8192, 1) };

function tar(entries: Buffer[], opts: { cut?: number } = {}): Buffer {
  const all = Buffer.concat([...entries, Buffer.alloc(1024)]);
  return opts.cut ? all.subarray(0, opts.cut) : all;
}

async function check(bytes: Buffer, chunk = 777) {
  const c = new TarManifestCheck();
  for (let i = 0; i < bytes.length; i += chunk) await new Promise<void>((r, j) => c.write(bytes.subarray(i, i + chunk), (e) => (e ? j(e) : r())));
  await new Promise<void>((r) => c.end(r));
  return c.verify();
}

const good = () => [
  entry("base/", Buffer.alloc(0), "5"),
  ...Object.entries(files).map(([p, b]) => entry(p, b)),
  entry("pg_wal", Buffer.alloc(0), "5"),
  entry("backup_manifest", manifestFor(files)),
];

describe("TarManifestCheck", () => {
  it("passes a whole backup fed in odd-sized chunks, and answers its WAL range", async () => {
    expect(await check(tar(good()))).toEqual({ files: 3, walRanges: [{ Timeline: 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }] });
  });

  it("refuses a file whose bytes changed", async () => {
    const bad = good();
    bad[2] = entry("base/1/1259", Buffer.alloc(20_000, 8));
    await expect(check(tar(bad))).rejects.toThrow(/base\/1\/1259 does not match its manifest's SHA-256/);
  });

  it("refuses a missing file, an unlisted file, a cut archive and a manifest changed after it was written", async () => {
    await expect(check(tar(good().filter((_, i) => i !== 3)))).rejects.toThrow(/missing global\/pg_control/);
    const extra = good();
    extra.splice(1, 0, entry("base/1/99999", Buffer.from("x")));
    await expect(check(tar(extra))).rejects.toThrow(/holds base\/1\/99999, which its manifest does not list/);
    await expect(check(tar(good(), { cut: 3000 }))).rejects.toThrow(/cut short/);
    const lied = good();
    lied[lied.length - 1] = entry("backup_manifest", manifestFor(files, { lie: "PG_VERSION" }));
    await expect(check(tar(lied))).rejects.toThrow(/manifest's own checksum/);
    await expect(check(tar(good().slice(0, -1)))).rejects.toThrow(/no backup_manifest/);
  });
});
