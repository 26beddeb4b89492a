import { execFileSync } from "node:child_process";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { zipDirectory } from "../../scripts/zip-dir.ts";

const dir = mkdtempSync(path.join(tmpdir(), "capydb-zip-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the pg layer's zip (scripts/zip-dir.ts)", () => {
  it("keeps executables executable, plain files plain and symlinks links, as unzip (and Lambda) unpack them", () => {
    // prepare: a layer's layout, pgsql/<major>/bin and lib with a versioned library and its link
    const src = path.join(dir, "layer");
    mkdirSync(path.join(src, "pgsql/18/bin"), { recursive: true });
    mkdirSync(path.join(src, "pgsql/18/lib"), { recursive: true });
    writeFileSync(path.join(src, "pgsql/18/bin/pg_dump"), "#!/bin/sh\necho 'pg_dump (PostgreSQL) 18.1'\n");
    chmodSync(path.join(src, "pgsql/18/bin/pg_dump"), 0o755);
    writeFileSync(path.join(src, "pgsql/18/lib/libpq.so.5.18"), Buffer.alloc(50_000, 7));
    chmodSync(path.join(src, "pgsql/18/lib/libpq.so.5.18"), 0o644);
    symlinkSync("libpq.so.5.18", path.join(src, "pgsql/18/lib/libpq.so.5"));
    // act
    const zip = path.join(dir, "layer.zip");
    zipDirectory(src, zip);
    const out = path.join(dir, "unzipped");
    execFileSync("unzip", ["-q", zip, "-d", out]);
    // assess
    const mode = (p: string) => statSync(path.join(out, p)).mode & 0o777;
    expect(mode("pgsql/18/bin/pg_dump")).toBe(0o755);
    expect(mode("pgsql/18/lib/libpq.so.5.18")).toBe(0o644);
    expect(lstatSync(path.join(out, "pgsql/18/lib/libpq.so.5")).isSymbolicLink()).toBe(true);
    expect(readlinkSync(path.join(out, "pgsql/18/lib/libpq.so.5"))).toBe("libpq.so.5.18");
    expect(readFileSync(path.join(out, "pgsql/18/lib/libpq.so.5.18"))).toEqual(Buffer.alloc(50_000, 7));
    expect(execFileSync(path.join(out, "pgsql/18/bin/pg_dump")).toString()).toBe("pg_dump (PostgreSQL) 18.1\n");
    // `unzip -Z` lists the modes the archive records (what Lambda applies).
    expect(execFileSync("unzip", ["-Z", zip]).toString()).toMatch(/^-rwxr-xr-x .* pgsql\/18\/bin\/pg_dump$/m);
  });
});
