/** @jsxImportSource hono/jsx */
import { DataTable, Layout } from "../layout.tsx";

export function JobsPage({ projectId }: { projectId: string }) {
  return (
    <Layout title="Jobs" page="jobs" projectId={projectId} tab="jobs">
      <h1>Jobs</h1>
      <p class="muted">The 25 newest jobs of this project. Open one for its progress and the output of its tools.</p>
      <DataTable id="jobs" caption="Jobs of this project, newest first" columns={["Job", "Type", "State", "Attempts", "Created", "Took", "Error"]} />
    </Layout>
  );
}

export function JobPage({ jobId }: { jobId: string }) {
  return (
    <Layout title={`Job ${jobId}`} page="job" data={{ "job-id": jobId }}>
      <p class="crumbs">
        <a id="job-project-link" href="/console/projects">
          Projects
        </a>
      </p>
      <h1>
        Job <code>{jobId}</code>
      </h1>
      <section aria-labelledby="progress-heading" class="card">
        <h2 id="progress-heading">Progress</h2>
        <ol id="job-steps" class="steps">
          <li data-step="pending">Queued</li>
          <li data-step="running">Running</li>
          <li data-step="done">Finished</li>
        </ol>
        <p id="job-status" role="status" aria-live="polite">
          Loading…
        </p>
      </section>
      <section aria-labelledby="details-heading" class="card">
        <h2 id="details-heading">Details</h2>
        <dl id="job-details" class="facts"></dl>
      </section>
      <section aria-labelledby="output-heading" class="card">
        <h2 id="output-heading">Output of the last run</h2>
        <p class="help">The last 4 KiB of the tools' output, with passwords and connection strings removed.</p>
        <h3>Standard error</h3>
        {/* biome-ignore lint/a11y/useSemanticElements: a <section> would not keep the output's whitespace; the region names the scrollable block */}
        <pre id="job-stderr" role="region" tabindex={0} aria-label="Standard error">
          —
        </pre>
        <h3>Standard output</h3>
        {/* biome-ignore lint/a11y/useSemanticElements: a <section> would not keep the output's whitespace; the region names the scrollable block */}
        <pre id="job-stdout" role="region" tabindex={0} aria-label="Standard output">
          —
        </pre>
      </section>
    </Layout>
  );
}

export function NotFoundPage({ what }: { what: string }) {
  return (
    <Layout title="Not found" page="not-found">
      <h1>Not found</h1>
      <p>{what}</p>
      <p>
        <a href="/console/projects">Back to the projects</a>
      </p>
    </Layout>
  );
}
