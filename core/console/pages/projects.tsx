/** @jsxImportSource hono/jsx */
import { Layout } from "../layout.tsx";

export function ProjectsPage() {
  return (
    <Layout title="Projects" page="projects" section="projects">
      <h1>Projects</h1>
      <div id="projects" aria-busy="true">
        <p class="muted">Loading…</p>
      </div>
      <form id="open-project" class="card inline" novalidate>
        <label for="project-id">Open a project by its id</label>
        <input id="project-id" name="project" required pattern="prj_[0-9a-z]{26}" placeholder="prj_…" spellcheck={false} autocapitalize="off" />
        <button type="submit">Open</button>
      </form>
    </Layout>
  );
}
