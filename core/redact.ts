/**
 * Removes secrets from text that may reach logs or API callers (tool output, error messages):
 * passwords in connection URIs and key=value strings, PGPASSWORD, API keys. The patterns are
 * deliberately broad: a false positive costs a few characters of output, a miss leaks a secret.
 */
const patterns: [RegExp, string][] = [
  // postgres://user:secret@host -> postgres://user:***@host
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]*@/gi, "$1:***@"],
  // password=secret, PGPASSWORD=secret, "password": "secret" (the key keeps its case)
  [/\b((?:pg)?password"?\s*[=:]\s*"?)[^\s"',;]+/gi, "$1***"],
  [/\bcapy_live_[A-Za-z0-9]+/g, "capy_live_***"],
];

export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= 3) out = out.split(s).join("***");
  }
  for (const [re, rep] of patterns) out = out.replace(re, rep);
  return out;
}

/** Keeps the last `maxBytes` of `text` (the end of tool output says why it failed). */
export function tail(text: string, maxBytes = 4096): string {
  const buf = Buffer.from(text, "utf8");
  if (buf.length <= maxBytes) return text;
  const marker = "[truncated]\n";
  return (
    marker +
    buf
      .subarray(buf.length - (maxBytes - marker.length))
      .toString("utf8")
      .replace(/^\uFFFD+/, "")
  );
}
