/** @jsxImportSource hono/jsx */
import { Layout } from "../layout.tsx";

/**
 * Sign in by pasting a key. The input has no `name`: were the script not running, submitting
 * the form would still send nothing, so the key can never end up in a URL or a server log.
 */
export function SignInPage(props: { clerk: boolean }) {
  return (
    <Layout title="Sign in" page="sign-in" data={props.clerk ? { clerk: "on" } : {}}>
      <h1>Sign in</h1>
      <p>
        Paste an API key of your organization. The console keeps it in this tab's session storage only (it is gone when the tab closes), sends it to this site's{" "}
        <code>/v1</code> API and nowhere else, and never puts it in a URL or a cookie. It can do exactly what the key can.
      </p>
      <form id="sign-in-form" class="card" novalidate>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          autocapitalize="off"
          required
          placeholder="capy_live_…"
          aria-describedby="api-key-help sign-in-error"
        />
        <p id="api-key-help" class="help">
          Starts with <code>capy_live_</code>. Locally, <code>npm start</code> prints one, and <code>.capydb/local.json</code> keeps it.
        </p>
        <p id="sign-in-error" class="error" role="alert" hidden></p>
        <div class="actions">
          <button type="submit">Sign in</button>
        </div>
      </form>
      {props.clerk ? (
        <p id="clerk-sign-in" class="help" hidden>
          Signed in to CapyDB in this browser?{" "}
          <button type="button" id="use-session" class="link">
            Use my CapyDB session
          </button>
        </p>
      ) : null}
    </Layout>
  );
}
