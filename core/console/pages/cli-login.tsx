/** @jsxImportSource hono/jsx */
import { Layout } from "../layout.tsx";

/**
 * Where `capydb login` sends a person: the device asking, the scopes it asks for and those it
 * would get from this approver, and Approve / Deny. The script fills it from the API; approving
 * makes no key here (the CLI's next poll does), so nothing secret ever reaches this page.
 */
export function CliLoginPage({ sessionId }: { sessionId: string }) {
  return (
    <Layout title="Approve a CLI login" page="cli-login" data={{ "session-id": sessionId }}>
      <h1>Approve a CLI login</h1>
      <section aria-labelledby="cli-login-heading" class="card" id="cli-login">
        <h2 id="cli-login-heading">
          <span id="cli-login-device">…</span> wants to sign in
        </h2>
        <p class="muted">
          Approve only if you just ran <code>capydb login</code> on this device. It gets a new API key of your organization, named after the device, that you
          can revoke like any key.
        </p>
        <dl class="fields">
          <dt>Requested scopes</dt>
          <dd id="cli-login-requested">…</dd>
          <dt>It will get</dt>
          <dd id="cli-login-granted">…</dd>
          <dt>Expires</dt>
          <dd id="cli-login-expires">…</dd>
        </dl>
        <p id="cli-login-status" role="status" aria-live="polite"></p>
        <div class="actions">
          <button type="button" id="cli-login-approve" disabled>
            Approve
          </button>
          <button type="button" id="cli-login-deny" class="secondary" disabled>
            Deny
          </button>
        </div>
      </section>
    </Layout>
  );
}
