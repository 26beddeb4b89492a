import { createTestEnv, type TestEnv } from "../support/env.ts";
import { readFileSync, readdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTENT_SECURITY_POLICY } from "../../core/console/routes.tsx";

/**
 * The console's pages as the server sends them (in-process, `app.request`): what a browser is
 * told about scripts, caching and framing, and that no page carries inline script or anything
 * from another origin. test/console/browser.test.ts drives them in Chromium.
 */
let env: TestEnv;
const projectId = "prj_01kbq2z8x7y6w5v4t3s2r1q0pa";
const jobId = "job_01kbq2z8x7y6w5v4t3s2r1q0pa";
const pages = [
  "/console",
  "/console/projects",
  `/console/projects/${projectId}`,
  `/console/projects/${projectId}/schedule`,
  `/console/projects/${projectId}/jobs`,
  `/console/projects/${projectId}/previews`,
  `/console/projects/${projectId}/restore-points`,
  `/console/jobs/${jobId}`,
  "/console/webhooks",
];

beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => env?.cleanup());

const get = (path: string, headers: Record<string, string> = {}) => env.app().request(path, { headers });

describe("console pages", () => {
  it.each(pages)("%s is an HTML page with a strict Content-Security-Policy, no inline script and nothing from elsewhere", async (path) => {
    const res = await get(path);
    const html = await res.text();
    expect(res.status, html).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=UTF-8");
    expect(res.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toContain("unsafe-inline");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(html.startsWith('<!doctype html><html lang="en">')).toBe(true);
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1"/>');
    // Every script has a same-origin src and no body; no inline handlers or styles.
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.map((m) => [m[1], m[2]])).toEqual([[expect.stringMatching(/^ src="\/console\/assets\/console\.js\?v=[0-9a-f]{12}" defer=""$/), ""]]);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).not.toMatch(/\sstyle=/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it("labels every input of every page", async () => {
    for (const path of pages) {
      const html = await (await get(path)).text();
      const ids = [...html.matchAll(/<input[^>]*\sid="([^"]+)"/g)].map((m) => m[1]);
      for (const id of ids) expect(html, `${path}: input #${id} has no label`).toContain(`<label for="${id}">`);
      expect([...html.matchAll(/<input(?![^>]*\sid=)[^>]*>/g)], `${path}: an input without an id cannot be labelled`).toEqual([]);
    }
  });

  it("the sign-in field has no name, so the key cannot leave in a form submission, and offers Clerk only when configured", async () => {
    const html = await (await get("/console")).text();
    const input = /<input[^>]*id="api-key"[^>]*>/.exec(html)?.[0];
    expect(input).toBeDefined();
    expect(input).not.toContain("name=");
    expect(input).toContain('type="password"');
    expect(input).toContain('autocomplete="off"');
    expect(html).not.toContain("use-session");
    const clerk = env.app({
      clerk: { jwksUrl: "https://clerk.example.com/.well-known/jwks.json", issuer: "https://clerk.example.com", authorizedParties: [] },
    });
    expect(await (await clerk.request("/console")).text()).toContain('id="use-session"');
  });

  it("serves the static files with their types, versioned URLs cached for a year", async () => {
    const names = readdirSync(new URL("../../core/console/static/", import.meta.url)).sort();
    expect(names).toEqual(["console.css", "console.js", "icon.svg"]);
    const html = await (await get("/console")).text();
    for (const [name, type] of [
      ["console.js", "text/javascript; charset=utf-8"],
      ["console.css", "text/css; charset=utf-8"],
      ["icon.svg", "image/svg+xml"],
    ] as const) {
      const url = new RegExp(`/console/assets/${name.replace(".", "\\.")}\\?v=[0-9a-f]{12}`).exec(html)?.[0];
      expect(url, `${name} is referenced by the page`).toBeDefined();
      const res = await get(url!);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe(type);
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect(await res.text()).toBe(readFileSync(new URL(`../../core/console/static/${name}`, import.meta.url), "utf8"));
      // An old version's URL is revalidated rather than kept.
      expect((await get(`/console/assets/${name}?v=000000000000`)).headers.get("cache-control")).toBe("no-cache");
    }
    expect((await get("/console/assets/nope.js")).status).toBe(404);
    expect((await get("/console/assets/..%2Fconsole.js")).status).toBe(404);
  });

  it("answers a not-found page for malformed ids and unknown console paths, and redirects /console/", async () => {
    for (const path of ["/console/projects/not-a-project", "/console/jobs/job_x", "/console/nothing/here"]) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
      expect(await res.text()).toContain("<h1>Not found</h1>");
    }
    const escaped = await (await get("/console/projects/%3Cscript%3Ealert(1)%3C%2Fscript%3E")).text();
    expect(escaped).not.toContain("<script>alert(1)");
    const slash = await get("/console/");
    expect(slash.status).toBe(301);
    expect(slash.headers.get("location")).toBe("/console");
  });

  it("leaves the API as it was: the console is not in the OpenAPI document and /v1 still needs a key", async () => {
    const doc = (await (await get("/v1/openapi.json")).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((p) => p.startsWith("/console"))).toEqual([]);
    expect((await get("/v1/me")).status).toBe(401);
    expect((await env.app().request("/console", { method: "POST" })).status).toBe(405);
  });
});
