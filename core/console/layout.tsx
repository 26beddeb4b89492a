/** @jsxImportSource hono/jsx */
import type { Child } from "hono/jsx";
import { assetUrl } from "./assets.ts";

/** The sections of a project, in the order of its tab bar. */
export const projectTabs = [
  { id: "backups", label: "Backups", path: "" },
  { id: "schedule", label: "Schedule", path: "/schedule" },
  { id: "jobs", label: "Jobs", path: "/jobs" },
  { id: "previews", label: "Previews", path: "/previews" },
  { id: "restore-points", label: "Restore points", path: "/restore-points" },
] as const;
export type ProjectTab = (typeof projectTabs)[number]["id"];

export interface LayoutProps {
  title: string;
  /** Which page the client script runs (`data-page`). */
  page: string;
  projectId?: string;
  tab?: ProjectTab;
  /** The organization-level section the page belongs to (its link in the header is marked current). */
  section?: "projects" | "webhooks";
  /** Extra `data-*` for the script (ids from the path). */
  data?: Record<string, string>;
  children?: Child;
}

export const projectPath = (projectId: string, path = "") => `/console/projects/${projectId}${path}`;

/**
 * Every console page: a document that works on a phone (viewport, one column under 40rem), with
 * a skip link, landmarks, a live region for what the script reports, and the one script, loaded
 * from this origin (the Content-Security-Policy allows no other, and no inline script).
 */
export function Layout(props: LayoutProps) {
  const data = Object.fromEntries(Object.entries(props.data ?? {}).map(([k, v]) => [`data-${k}`, v]));
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{`${props.title} · CapyDB Backups`}</title>
        <link rel="icon" href={assetUrl("icon.svg")} type="image/svg+xml" />
        <link rel="stylesheet" href={assetUrl("console.css")} />
        <script src={assetUrl("console.js")} defer></script>
      </head>
      <body data-page={props.page} data-project-id={props.projectId} {...data}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <a class="brand" href="/console/projects">
            <img src={assetUrl("icon.svg")} alt="" width="24" height="24" />
            CapyDB Backups
          </a>
          {props.page === "sign-in" ? null : (
            <nav class="sections" aria-label="Organization">
              <a href="/console/projects" aria-current={props.section === "projects" ? "page" : undefined}>
                Projects
              </a>
              <a href="/console/webhooks" aria-current={props.section === "webhooks" ? "page" : undefined}>
                Webhooks
              </a>
            </nav>
          )}
          <div class="account" id="account" hidden>
            <span id="whoami" class="muted"></span>
            <button type="button" id="sign-out" class="link">
              Sign out
            </button>
          </div>
        </header>
        {props.projectId ? <ProjectNav projectId={props.projectId} tab={props.tab} /> : null}
        <main id="main" tabindex={-1}>
          <noscript>
            <p class="error">The console runs in your browser: it calls the CapyDB API with your key. Turn on JavaScript to use it.</p>
          </noscript>
          <div id="flash" class="error" role="alert" hidden></div>
          {props.children}
        </main>
      </body>
    </html>
  );
}

function ProjectNav({ projectId, tab }: { projectId: string; tab?: ProjectTab }) {
  return (
    <nav class="project" aria-label="Project">
      <p class="project-name">
        <a href="/console/projects">Projects</a> / <span id="project-name">{projectId}</span>
      </p>
      <ul class="tabs">
        {projectTabs.map((t) => (
          <li>
            <a href={projectPath(projectId, t.path)} aria-current={t.id === tab ? "page" : undefined}>
              {t.label}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}

/** A table whose body the script fills; `columns` double as the labels of the phone layout. */
export function DataTable(props: { id: string; caption: string; columns: string[]; empty?: string }) {
  return (
    <div class="table-wrap">
      <table id={props.id} data-columns={props.columns.join("|")}>
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th scope="col">{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          <tr class="placeholder">
            <td colspan={props.columns.length}>Loading…</td>
          </tr>
        </tbody>
      </table>
    </div>
  );
}
