/** @jsxImportSource hono/jsx */
import { DataTable, Layout } from "../layout.tsx";

export function PreviewsPage({ projectId }: { projectId: string }) {
  return (
    <Layout title="Previews" page="previews" projectId={projectId} tab="previews">
      <h1>Preview databases</h1>
      <p class="muted">
        Real databases on the project's cluster, each with its own login, for trying a migration or checking a backup. Each is deleted when it expires.
      </p>
      <section aria-labelledby="new-preview-heading" class="card">
        <h2 id="new-preview-heading">New preview</h2>
        <form id="preview-form" novalidate>
          <label for="preview-name">Name (optional)</label>
          <input
            id="preview-name"
            name="name"
            maxlength={63}
            pattern="[A-Za-z0-9][A-Za-z0-9_.\-]*"
            placeholder="try-migration"
            spellcheck={false}
            autocapitalize="off"
          />
          <fieldset>
            <legend>Start from</legend>
            <div class="check">
              <input id="preview-mode-empty" type="radio" name="mode" value="empty" checked />
              <label for="preview-mode-empty">An empty database</label>
            </div>
            <div class="check">
              <input id="preview-mode-clone" type="radio" name="mode" value="clone" />
              <label for="preview-mode-clone">A copy of the newest verified backup</label>
            </div>
          </fieldset>
          <label for="preview-ttl">Delete it after (hours, 1-168)</label>
          <input id="preview-ttl" name="ttl_hours" type="number" inputmode="numeric" min={1} max={168} step={1} value="24" required />
          <p id="preview-error" class="error" role="alert" hidden></p>
          <div class="actions">
            <button type="submit">Create preview</button>
          </div>
        </form>
        <p id="preview-progress" role="status" aria-live="polite"></p>
      </section>
      <section aria-labelledby="previews-heading">
        <h2 id="previews-heading">Previews</h2>
        <p id="preview-action-status" role="status" aria-live="polite"></p>
        <DataTable id="previews" caption="Preview databases of this project, newest first" columns={["Name", "State", "From", "Expires", "Actions"]} />
      </section>
      <section id="connection" aria-labelledby="connection-heading" class="card" hidden>
        <h2 id="connection-heading">
          Connection string of <span id="connection-name"></span>
        </h2>
        <label for="connection-url">Direct connection (it contains the password: treat it as one)</label>
        <div class="copy">
          <input id="connection-url" type="text" readonly spellcheck={false} />
          <button type="button" id="copy-connection">
            Copy
          </button>
        </div>
        <p id="connection-help" class="help"></p>
        <p id="copy-status" role="status" aria-live="polite"></p>
        <div class="actions">
          <button type="button" id="hide-connection" class="secondary">
            Hide
          </button>
        </div>
      </section>
    </Layout>
  );
}
