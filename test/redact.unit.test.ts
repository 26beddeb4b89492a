import { describe, expect, it } from "vitest";
import { redact, tail } from "../core/redact.ts";

/** What may reach logs or API callers: never a password or an API key. */
describe("redact", () => {
  it.each([
    ["a connection URI's password", "pg_dump postgres://capy:s3cr3t@db:5432/shop", "pg_dump postgres://capy:***@db:5432/shop"],
    ["postgresql:// too", "postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"],
    ["a URI without a password is left alone", "postgres://capy@db/shop", "postgres://capy@db/shop"],
    ["two URIs in one line", "from postgres://a:x1@h1/d to postgres://b:y2@h2/d", "from postgres://a:***@h1/d to postgres://b:***@h2/d"],
    ["key=value", "host=db password=hunter2 dbname=shop", "host=db password=*** dbname=shop"],
    ["PGPASSWORD", "PGPASSWORD=hunter2 pg_dump", "PGPASSWORD=*** pg_dump"],
    ["JSON", '{"password": "hunter2", "user": "u"}', '{"password": "***", "user": "u"}'],
    ["case does not matter", "Password: hunter2", "Password: ***"],
    ["an API key", "key capy_live_AbC123xyz was used", "key capy_live_*** was used"],
    ["text without secrets is unchanged", "pg_dump: error: query failed", "pg_dump: error: query failed"],
  ])("%s", (_what, text, expected) => {
    expect(redact(text)).toBe(expected);
  });

  it("removes known secrets wherever they appear, however they are quoted", () => {
    expect(redact("role secret-role-pw failed; 'secret-role-pw'", ["secret-role-pw"])).toBe("role *** failed; '***'");
  });

  it("ignores empty and very short known secrets (they would shred the text)", () => {
    expect(redact("a b c", ["", "a"])).toBe("a b c");
  });
});

describe("tail", () => {
  it("keeps short text as it is", () => {
    expect(tail("short", 100)).toBe("short");
  });

  it("keeps the end of long text, marked, within the byte budget", () => {
    const out = tail(`${"a".repeat(1000)}END`, 100);
    expect(out.startsWith("[truncated]\n")).toBe(true);
    expect(out.endsWith("END")).toBe(true);
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(100);
  });

  it("never leaves half a multi-byte character at the cut", () => {
    const out = tail("é".repeat(200), 51);
    expect(out).not.toContain("\uFFFD");
    expect(out.replace("[truncated]\n", "")).toMatch(/^é+$/);
  });
});
