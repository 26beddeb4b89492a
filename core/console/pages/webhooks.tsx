/** @jsxImportSource hono/jsx */
import { DataTable, Layout } from "../layout.tsx";

/** The event types of SPEC section 5, for the subscription checkboxes. */
export const webhookEventTypes = [
  "backup.completed",
  "job.completed",
  "job.failed",
  "restore.completed",
  "preview.ready",
  "preview.deleted",
  "export.completed",
] as const;

export function WebhooksPage() {
  return (
    <Layout title="Webhooks" page="webhooks" section="webhooks">
      <h1>Webhooks</h1>
      <p class="muted">
        Your organization's endpoints: CapyDB sends them a signed POST when a backup, restore, preview or export finishes. Each delivery carries an{" "}
        <code>X-CapyDB-Delivery</code> id to deduplicate on and an <code>X-CapyDB-Signature</code> to check with the endpoint's secret.
      </p>
      <section aria-labelledby="new-endpoint-heading" class="card">
        <h2 id="new-endpoint-heading">New endpoint</h2>
        <form id="endpoint-form" novalidate>
          <label for="endpoint-url">URL (https, publicly reachable)</label>
          <input
            id="endpoint-url"
            name="url"
            type="url"
            maxlength={2048}
            required
            placeholder="https://example.com/hooks/capydb"
            spellcheck={false}
            autocapitalize="off"
          />
          <label for="endpoint-description">Description (optional)</label>
          <input id="endpoint-description" name="description" maxlength={500} />
          <fieldset>
            <legend>Events (none checked: all of them)</legend>
            {webhookEventTypes.map((t) => (
              <div class="check">
                <input id={`event-${t.replace(".", "-")}`} type="checkbox" name="event_types" value={t} />
                <label for={`event-${t.replace(".", "-")}`}>
                  <code>{t}</code>
                </label>
              </div>
            ))}
          </fieldset>
          <p id="endpoint-error" class="error" role="alert" hidden></p>
          <div class="actions">
            <button type="submit">Add endpoint</button>
          </div>
        </form>
      </section>
      <section id="secret" aria-labelledby="secret-heading" class="card" hidden>
        <h2 id="secret-heading">Signing secret</h2>
        <p>Copy it now: it is shown this once. Keep it where your receiver can read it.</p>
        <label for="secret-value">
          Secret of <span id="secret-endpoint"></span>
        </label>
        <div class="copy">
          <input id="secret-value" type="text" readonly spellcheck={false} />
          <button type="button" id="copy-secret">
            Copy
          </button>
        </div>
        <p id="secret-status" role="status" aria-live="polite"></p>
        <div class="actions">
          <button type="button" id="hide-secret" class="secondary">
            I have kept it
          </button>
        </div>
      </section>
      <section aria-labelledby="endpoints-heading">
        <h2 id="endpoints-heading">Endpoints</h2>
        <p id="endpoint-action-status" role="status" aria-live="polite"></p>
        <DataTable id="endpoints" caption="Webhook endpoints of this organization" columns={["URL", "Events", "Health", "Created", "Actions"]} />
      </section>
      <section id="deliveries-section" aria-labelledby="deliveries-heading" hidden>
        <h2 id="deliveries-heading">
          Deliveries to <span id="deliveries-endpoint"></span>
        </h2>
        <DataTable
          id="deliveries"
          caption="The 25 newest deliveries, newest first"
          columns={["Event", "State", "Attempts", "Response", "Created", "Actions"]}
        />
      </section>
    </Layout>
  );
}
