/** @jsxImportSource hono/jsx */
import type { Context, Hono, MiddlewareHandler } from "hono";
import type { JSX } from "hono/jsx/jsx-runtime";
import { isId } from "../ids.ts";
import { getAsset } from "./assets.ts";
import { BackupsPage } from "./pages/backups.tsx";
import { CliLoginPage } from "./pages/cli-login.tsx";
import { JobPage, JobsPage, NotFoundPage } from "./pages/jobs.tsx";
import { PreviewsPage } from "./pages/previews.tsx";
import { ProjectsPage } from "./pages/projects.tsx";
import { RestorePointsPage } from "./pages/restore-points.tsx";
import { SchedulePage } from "./pages/schedule.tsx";
import { SignInPage } from "./pages/sign-in.tsx";
import { WebhooksPage } from "./pages/webhooks.tsx";

/**
 * Scripts only from this origin and never inline, nothing from anywhere else, no framing: the
 * page holds an API key in session storage, so injected script is what it must keep out.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

const secureHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  c.header("Content-Security-Policy", CONTENT_SECURITY_POLICY);
  c.header("X-Content-Type-Options", "nosniff");
  c.header("Referrer-Policy", "no-referrer");
  c.header("X-Frame-Options", "DENY");
  c.header("Cross-Origin-Opener-Policy", "same-origin");
};

async function page(c: Context, body: JSX.Element, status: 200 | 404 = 200): Promise<Response> {
  c.header("Cache-Control", "no-store");
  return c.html(`<!doctype html>${await body}`, status);
}

export interface ConsoleOptions {
  /** Whether Clerk session tokens are accepted: the sign-in page then offers the browser's session. */
  clerk: boolean;
}

/**
 * The browser console at `/console`: server-rendered pages (Hono JSX) and one script that calls
 * the public `/v1` API with the key the user pasted. The pages hold no data and need no
 * credential; everything they show comes from the API, so the console can do nothing the key
 * cannot.
 */
export function registerConsole(app: Hono<any, any, any>, opts: ConsoleOptions): void {
  app.use("/console", secureHeaders);
  app.use("/console/*", secureHeaders);

  app.get("/console", (c) => page(c, <SignInPage clerk={opts.clerk} />));
  app.get("/console/", (c) => c.redirect("/console", 301));
  app.get("/console/projects", (c) => page(c, <ProjectsPage />));

  const withProject = (render: (projectId: string) => JSX.Element) => (c: Context) => {
    const projectId = c.req.param("projectID") ?? "";
    if (!isId("project", projectId))
      return page(c, <NotFoundPage what={`There is no project ${projectId}: project ids look like prj_ followed by 26 letters and digits.`} />, 404);
    return page(c, render(projectId));
  };
  app.get(
    "/console/projects/:projectID",
    withProject((id) => <BackupsPage projectId={id} />),
  );
  app.get(
    "/console/projects/:projectID/schedule",
    withProject((id) => <SchedulePage projectId={id} />),
  );
  app.get(
    "/console/projects/:projectID/jobs",
    withProject((id) => <JobsPage projectId={id} />),
  );
  app.get(
    "/console/projects/:projectID/previews",
    withProject((id) => <PreviewsPage projectId={id} />),
  );
  app.get(
    "/console/projects/:projectID/restore-points",
    withProject((id) => <RestorePointsPage projectId={id} />),
  );

  app.get("/console/webhooks", (c) => page(c, <WebhooksPage />));
  app.get("/console/cli-login/:sessionID", (c) => {
    const sessionId = c.req.param("sessionID");
    if (!isId("cliLoginSession", sessionId))
      return page(c, <NotFoundPage what={`There is no login ${sessionId}: run \`capydb login\` again and open the link it prints.`} />, 404);
    return page(c, <CliLoginPage sessionId={sessionId} />);
  });
  app.get("/console/jobs/:jobID", (c) => {
    const jobId = c.req.param("jobID");
    if (!isId("job", jobId)) return page(c, <NotFoundPage what={`There is no job ${jobId}: job ids look like job_ followed by 26 letters and digits.`} />, 404);
    return page(c, <JobPage jobId={jobId} />);
  });

  app.get("/console/assets/:name", (c) => {
    const asset = getAsset(c.req.param("name"));
    if (!asset) return c.text("not found", 404);
    // A versioned URL never changes content; an unversioned one is checked every time.
    c.header("Cache-Control", c.req.query("v") === asset.version ? "public, max-age=31536000, immutable" : "no-cache");
    c.header("Content-Type", asset.type);
    return c.body(asset.body);
  });

  app.get("/console/*", (c) => page(c, <NotFoundPage what={`There is no console page at ${c.req.path}.`} />, 404));
  // Pages only: another method is a 405, as the API answers it (the console is its own app when deployed).
  app.on(["POST", "PUT", "PATCH", "DELETE"], ["/console", "/console/*"], (c) => {
    c.header("Allow", "GET");
    return c.json({ error: `method ${c.req.method} is not allowed on ${c.req.path}` }, 405);
  });
}
