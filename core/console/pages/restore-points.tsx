/** @jsxImportSource hono/jsx */
import { DataTable, Layout } from "../layout.tsx";

export function RestorePointsPage({ projectId }: { projectId: string }) {
  return (
    <Layout title="Restore points" page="restore-points" projectId={projectId} tab="restore-points">
      <h1>Restore points</h1>
      <p class="muted">
        A restore point names a backup worth keeping ("before the 2.0 migration"): while it is active, retention does not delete that backup. To restore the
        database as it was at a moment, pick the time on the Backups page's timeline.
      </p>
      <section aria-labelledby="new-point-heading" class="card">
        <h2 id="new-point-heading">New restore point</h2>
        <form id="restore-point-form" novalidate>
          <label for="point-label">Label</label>
          <input id="point-label" name="label" maxlength={200} required placeholder="before the 2.0 migration" />
          <label for="point-backup">Backup</label>
          <select id="point-backup" name="backup_key" required>
            <option value="">The newest verified backup</option>
          </select>
          <label for="point-note">Note (optional)</label>
          <input id="point-note" name="note" maxlength={2000} />
          <p id="point-error" class="error" role="alert" hidden></p>
          <div class="actions">
            <button type="submit">Create restore point</button>
          </div>
        </form>
      </section>
      <section aria-labelledby="points-heading">
        <h2 id="points-heading">All restore points</h2>
        <p id="point-action-status" role="status" aria-live="polite"></p>
        <DataTable id="restore-points" caption="Restore points of this project" columns={["Label", "Backup", "State", "Created", "Actions"]} />
      </section>
    </Layout>
  );
}
