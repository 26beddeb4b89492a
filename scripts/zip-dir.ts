/**
 * Zips a directory into a file with every entry's Unix mode kept (executables stay executable,
 * symlinks stay symlinks), for the pg tools layer: Lambda unpacks a layer with the modes its zip
 * records, and Pulumi's FileArchive of a directory is reported to drop them (pulumi/pulumi#3593),
 * so the deploy hands the layer this file instead. Deflate from node:zlib, no dependency.
 *
 * Usage: `npx tsx scripts/zip-dir.ts <dir> <out.zip>`.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { crc32, deflateRawSync } from "node:zlib";

interface Entry {
  name: string;
  mode: number;
  data: Buffer;
}

function collect(root: string, rel = ""): Entry[] {
  const out: Entry[] = [];
  for (const name of readdirSync(path.join(root, rel)).sort()) {
    const relPath = rel ? `${rel}/${name}` : name;
    const full = path.join(root, relPath);
    const st = lstatSync(full);
    if (st.isSymbolicLink()) out.push({ name: relPath, mode: st.mode, data: Buffer.from(readlinkSync(full)) });
    else if (st.isDirectory()) {
      out.push({ name: `${relPath}/`, mode: st.mode, data: Buffer.alloc(0) });
      out.push(...collect(root, relPath));
    } else if (st.isFile()) out.push({ name: relPath, mode: st.mode, data: readFileSync(full) });
  }
  return out;
}

/** Writes `dir`'s tree to `out` as a zip; returns the number of entries. */
export function zipDirectory(dir: string, out: string): number {
  const entries = collect(dir);
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, "utf8");
    const deflated = e.data.length ? deflateRawSync(e.data, { level: 9 }) : Buffer.alloc(0);
    const store = deflated.length >= e.data.length;
    const body = store ? e.data : deflated;
    const crc = crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(store ? 0 : 8, 8);
    local.writeUInt32LE(0, 10); // time, date: fixed, so the zip of the same tree is the same bytes
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix: the external attributes carry the mode
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(store ? 0 : 8, 10);
    central.writeUInt32LE(0, 12);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(e.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(0, 30); // extra, comment lengths
    central.writeUInt32LE(0, 34); // disk, internal attributes
    central.writeUInt32LE((((e.mode & 0xffff) << 16) | (e.name.endsWith("/") ? 0x10 : 0)) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  writeFileSync(out, Buffer.concat([...locals, cd, end]));
  return entries.length;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [dir, out] = process.argv.slice(2);
  if (!dir || !out) {
    console.error("usage: zip-dir.ts <dir> <out.zip>");
    process.exit(2);
  }
  console.log(`${out}: ${zipDirectory(dir, out)} entries, modes kept`);
}
