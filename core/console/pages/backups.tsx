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
      <PitrSection />
      <section aria-labelledby="backups-heading">
        <h2 id="backups-heading">All backups</h2>
        <p id="backup-action-status" role="status" aria-live="polite"></p>
        <DataTable
          id="backups"
          caption="Backups of this project, newest first. Each is verified by restoring it into a throwaway database."
          columns={["Created", "Label", "State", "Verification", "Size", "Actions"]}
        />
      </section>
      <section aria-labelledby="backup-chart-heading" id="backup-chart-section">
        <h2 id="backup-chart-heading">Size and duration over time</h2>
        <p id="backup-chart-summary" class="muted">
          Loading…
        </p>
        <div id="backup-chart" class="chart"></div>
        <details class="alt">
          <summary>The same as a table</summary>
          <DataTable
            id="backup-chart-table"
            caption="Completed backups, oldest first: size, and how long the backup job took (dump, upload and verification)"
            columns={["Created", "Size", "Took"]}
          />
        </details>
      </section>
    </Layout>
  );
}

/**
 * The restorable window of the project's cluster (GET .../pitr) as a timeline, its text
 * alternative, and the picker of a point in time to restore into a new preview. The script fills
 * it; without an archive it says so and offers nothing to pick.
 */
function PitrSection() {
  return (
    <section aria-labelledby="pitr-heading" class="card" id="pitr">
      <h2 id="pitr-heading">Point-in-time recovery</h2>
      <p id="pitr-summary">Loading the restorable window…</p>
      <div id="pitr-timeline" class="timeline" hidden></div>
      <dl id="pitr-facts" class="facts" hidden></dl>
      <form id="pitr-form" novalidate hidden>
        <label for="pitr-time">Restore the database as it was at (UTC)</label>
        <input id="pitr-time" name="restore_time" type="datetime-local" step="1" />
        <p class="help">Pick a moment on the timeline (click it, or focus it and use the arrow keys), or type a date and time in UTC.</p>
        <p id="pitr-what" aria-live="polite"></p>
        <p id="pitr-error" class="error" role="alert" hidden></p>
        <div class="actions">
          <button type="submit" id="pitr-restore">
            Restore into a new preview
          </button>
        </div>
      </form>
      <p id="pitr-progress" role="status" aria-live="polite"></p>
    </section>
  );
}
