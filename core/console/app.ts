import { Hono } from "hono";
import { registerConsole, type ConsoleOptions } from "./routes.tsx";

/** The routes the console answers: `/console` and everything under it (infra/api.ts routes these to it). */
export const isConsolePath = (path: string): boolean => path === "/console" || path.startsWith("/console/");

/**
 * The console as an app of its own, served by its own function (functions/console.ts): its
 * pages hold no data and need no credential (everything they show, the browser fetches from the
 * public `/v1` API with the user's key), so the function has no link but the Clerk switch, and
 * the API function does not carry the pages, their script and the JSX runtime.
 */
export function createConsoleApp(opts: ConsoleOptions): Hono {
  const app = new Hono();
  registerConsole(app, opts);
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => {
    console.error(JSON.stringify({ level: "ERROR", message: "console page failed", error: err instanceof Error ? err.message : String(err) }));
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}

type Fetch = (request: Request, ...rest: any[]) => Response | Promise<Response>;

/**
 * One origin for the API and the console, routed by path as the deployed HTTP API does
 * (infra/api.ts: `/console` and `/console/{proxy+}` to the console function, the rest to the
 * API): the local stack serves this.
 */
export function withConsole(api: { fetch: Fetch }, consoleApp: { fetch: Fetch }): Fetch {
  return (request, ...rest) => (isConsolePath(new URL(request.url).pathname) ? consoleApp.fetch(request, ...rest) : api.fetch(request, ...rest));
}
