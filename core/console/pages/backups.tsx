/** @jsxImportSource hono/jsx */
import { DataTable, Layout, projectPath } from "../layout.tsx";

export function BackupsPage({ projectId }: { projectId: string }) {
  return (
    <Layout title="Backups" page="backups" projectId={projectId} tab="backups">
      <h1>Backups</h1>
      <p id="schedule-summary" class="muted">
        <a href={projectPath(projectId, "/schedule")}>Schedule</a>
      </p>
      <section aria-labelledby="backup-now-heading" class="card">
        <h2 id="backup-now-heading">Back up now</h2>
        <form id="backup-now-form" class="inline" novalidate>
          <label for="backup-label">Label (optional)</label>
          <input id="backup-label" name="label" maxlength={200} placeholder="before migration" />
          <button type="submit">Back up now</button>
        </form>
        <p id="backup-progress" role="status" aria-live="polite"></p>
      </section>
      <section aria-labelledby="backups-heading">
        <h2 id="backups-heading">All backups</h2>
        <p id="backup-action-status" role="status" aria-live="polite"></p>
        <DataTable
          id="backups"
          caption="Backups of this project, newest first. Each is verified by restoring it into a throwaway database."
          columns={["Created", "Label", "State", "Verification", "Size", "Actions"]}
        />
      </section>
    </Layout>
  );
}
