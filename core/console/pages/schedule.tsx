/** @jsxImportSource hono/jsx */
import { Layout } from "../layout.tsx";

export function SchedulePage({ projectId }: { projectId: string }) {
  return (
    <Layout title="Schedule" page="schedule" projectId={projectId} tab="schedule">
      <h1>Schedule</h1>
      <section aria-labelledby="current-heading" class="card">
        <h2 id="current-heading">Current schedule</h2>
        <dl id="schedule-view" class="facts" aria-busy="true">
          <dt>State</dt>
          <dd>Loading…</dd>
        </dl>
        <div class="actions">
          <button type="button" id="schedule-toggle" hidden>
            Pause
          </button>
        </div>
        <p id="schedule-status" role="status" aria-live="polite"></p>
      </section>
      <section aria-labelledby="change-heading" class="card">
        <h2 id="change-heading">Change the schedule</h2>
        <form id="schedule-form" novalidate>
          <fieldset>
            <legend>One backup a day, at (UTC)</legend>
            <div class="row">
              <div>
                <label for="cron-hour">Hour (0-23)</label>
                <input id="cron-hour" name="cron_hour" type="number" inputmode="numeric" min={0} max={23} step={1} required />
              </div>
              <div>
                <label for="cron-minute">Minute (0-59)</label>
                <input id="cron-minute" name="cron_minute" type="number" inputmode="numeric" min={0} max={59} step={1} required />
              </div>
            </div>
          </fieldset>
          <label for="retention-days">Keep each backup for (days, 1-365)</label>
          <input id="retention-days" name="retention_days" type="number" inputmode="numeric" min={1} max={365} step={1} value="14" required />
          <label for="schedule-label">Label of scheduled backups</label>
          <input id="schedule-label" name="label" maxlength={200} value="default" />
          <div class="check">
            <input id="schedule-active" name="is_active" type="checkbox" checked />
            <label for="schedule-active">Active (unchecked: paused, no scheduled backups)</label>
          </div>
          <p id="schedule-error" class="error" role="alert" hidden></p>
          <div class="actions">
            <button type="submit">Save schedule</button>
          </div>
        </form>
      </section>
    </Layout>
  );
}
