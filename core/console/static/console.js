// CapyDB Backups console: the one script of every console page (served from this origin; the
// Content-Security-Policy allows no other and no inline script). The server renders each page's
// structure; this script signs in, calls the public /v1 API with the pasted key, and fills the
// page in. The key lives in this tab's sessionStorage only: never in a URL, a cookie or localStorage.
(() => {
  "use strict";

  const STORE = { credential: "capydb.console.credential", flash: "capydb.console.flash", recent: "capydb.console.recent" };
  const POLL_MS = 1000;
  const body = document.body;
  const page = body.dataset.page;
  const projectId = body.dataset.projectId || null;
  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---- storage -------------------------------------------------------------------------------

  const session = {
    get(k) {
      try {
        return sessionStorage.getItem(k);
      } catch {
        return null;
      }
    },
    set(k, v) {
      try {
        sessionStorage.setItem(k, v);
      } catch {
        /* storage disabled: the console then cannot keep a key */
      }
    },
    remove(k) {
      try {
        sessionStorage.removeItem(k);
      } catch {
        /* nothing to remove */
      }
    },
  };

  // ---- the API ------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function explain(status, error) {
    const said = error ? `: ${error}` : "";
    if (status === 403) return `This key is not allowed to do that${said}.`;
    if (status === 404) return `Not found${said}. It does not exist, or this key cannot see it.`;
    if (status === 409) return `Conflict${said}.`;
    if (status === 429 || status === 503) return "The service is busy or briefly unavailable. Try again in a moment.";
    if (status >= 500) return "The service had an internal error. Try again; if it keeps happening, contact CapyDB support.";
    return error || `The request failed (HTTP ${status}).`;
  }

  /** Clerk's own session cookie on this site (kept fresh by the CapyDB dashboard's Clerk script). */
  const clerkSession = () => {
    const m = document.cookie.match(/(?:^|;\s*)__session=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : null;
  };
  const SESSION_MARK = "clerk-session";

  /**
   * The credential for the next call: the pasted key, or (signed in with Clerk) the session cookie
   * read afresh each time, since Clerk replaces the short-lived token every minute.
   */
  function currentCredential() {
    const stored = session.get(STORE.credential);
    return stored === SESSION_MARK ? clerkSession() : stored;
  }

  /** Calls the /v1 API with the stored credential; answers the JSON body or throws an ApiError. */
  async function api(method, path, payload, credential = currentCredential()) {
    const headers = { accept: "application/json", authorization: `Bearer ${credential}` };
    if (payload !== undefined) headers["content-type"] = "application/json";
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: payload === undefined ? undefined : JSON.stringify(payload),
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, "The API could not be reached. Check your connection and try again.");
    }
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    const error = data && typeof data.error === "string" ? data.error : "";
    if (res.status === 401) throw new ApiError(401, error || "the key was refused");
    if (!res.ok) throw new ApiError(res.status, explain(res.status, error));
    const next = res.headers.get("x-next-cursor");
    // A list's next page, for the few callers that follow it (not part of the JSON body).
    if (next && data && typeof data === "object") Object.defineProperty(data, "nextCursor", { value: next, enumerable: false });
    return data;
  }

  /** A key that stops working mid-session (revoked, expired) sends the user back to sign in. */
  function handleSignedOut(err) {
    if (!(err instanceof ApiError) || err.status !== 401) return false;
    signOut(`Your key stopped working (${err.message}). Sign in again with a valid key.`);
    return true;
  }

  function signOut(message) {
    session.remove(STORE.credential);
    if (message) session.set(STORE.flash, message);
    const next = page === "sign-in" ? "" : `?next=${encodeURIComponent(location.pathname)}`;
    location.assign(`/console${next}`);
  }

  // ---- DOM helpers --------------------------------------------------------------------------

  /** Builds an element; text is always set as text (never parsed as HTML). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "onclick") el.addEventListener("click", v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  function flash(message) {
    const el = $("flash");
    if (!el) return;
    el.textContent = message;
    el.hidden = !message;
  }

  /** Reports a failed load or action: in the page's alert area, unless the key stopped working. */
  function fail(err, el) {
    if (handleSignedOut(err)) return;
    const message = err instanceof Error ? err.message : String(err);
    if (el) {
      el.textContent = message;
      el.hidden = false;
    } else flash(message);
  }

  function setStatus(el, ...content) {
    if (!el) return;
    el.replaceChildren(...content);
  }

  /**
   * Fills a server-rendered table: one row per item, each cell labelled with its column. Rows
   * whose content did not change are kept as they are (so polling never takes the keyboard focus
   * away from a button in them); changed ones are replaced and briefly highlighted.
   */
  function fillTable(table, rows, empty) {
    const labels = (table.dataset.columns || "").split("|");
    const tbody = table.tBodies[0];
    if (!rows.length) {
      tbody.replaceChildren(h("tr", { class: "placeholder" }, h("td", { colspan: labels.length }, empty)));
      return;
    }
    const existing = new Map([...tbody.rows].filter((r) => r.dataset.id).map((r) => [r.dataset.id, r]));
    const wanted = rows.map((row) => {
      const old = existing.get(row.id);
      if (old && old.dataset.signature === row.signature) return old;
      const tr = h(
        "tr",
        { "data-id": row.id, "data-signature": row.signature },
        row.cells.map((cell, i) => h("td", { "data-label": labels[i], "data-col": row.cols?.[i], class: cell.className }, cell.content ?? cell)),
      );
      if (old) tr.classList.add("updated");
      return tr;
    });
    let cursor = tbody.firstElementChild;
    for (const tr of wanted) {
      if (tr === cursor) cursor = cursor.nextElementSibling;
      else tbody.insertBefore(tr, cursor);
    }
    while (cursor) {
      const next = cursor.nextElementSibling;
      cursor.remove();
      cursor = next;
    }
  }

  /** Keeps "3 min ago" true while a page stays open. */
  function tickTimes() {
    setInterval(() => {
      for (const t of document.querySelectorAll("time[datetime][data-relative]")) t.textContent = ago(t.getAttribute("datetime"));
    }, 15_000);
  }

  // ---- formatting ---------------------------------------------------------------------------

  function formatBytes(n) {
    if (!Number.isFinite(n) || n <= 0) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
  }

  function formatDuration(ms) {
    if (!Number.isFinite(ms) || ms < 0) return "—";
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function ago(iso) {
    const ms = Date.now() - Date.parse(iso);
    if (!Number.isFinite(ms)) return "—";
    const s = Math.round(ms / 1000);
    if (s < 0) {
      const ahead = -s;
      if (ahead < 3600) return `in ${Math.max(1, Math.round(ahead / 60))} min`;
      if (ahead < 86400 * 2) return `in ${Math.round(ahead / 3600)} h`;
      return `in ${Math.round(ahead / 86400)} days`;
    }
    if (s < 10) return "just now";
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400 * 2) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} days ago`;
  }

  /** A <time>: relative text, the exact UTC time as its title and machine-readable value. */
  const when = (iso) => (iso ? h("time", { datetime: iso, title: new Date(iso).toUTCString(), "data-relative": true }, ago(iso)) : "—");

  const tone = { healthy: "ok", delivered: "ok", failing: "bad", disabled: "off", pending: "busy", running: "busy", provisioning: "busy", completed: "ok", verified: "ok", ready: "ok", active: "ok", failed: "bad", expired: "off", paused: "off", deleted: "off" };
  const badge = (state) => h("span", { class: `badge ${tone[state] || "off"}`, "data-state": state }, state);

  const pad = (n) => String(n).padStart(2, "0");
  /** Ends a sentence once, whether or not the text (an error message) already ends with a stop. */
  const stop = (text) => (/[.!?]$/.test(text) ? text : `${text}.`);

  // ---- who is signed in ---------------------------------------------------------------------

  async function showAccount() {
    const account = $("account");
    $("sign-out")?.addEventListener("click", () => {
      session.remove(STORE.recent);
      signOut("");
    });
    try {
      const { principal } = await api("GET", "/v1/me");
      const who = principal.auth_source === "api_key" ? "API key" : "Session";
      const scope = principal.project_id ? `project ${principal.project_id}` : `organization ${principal.organization_id}`;
      $("whoami").textContent = `${who} · ${scope}`;
      $("whoami").title = `Scopes: ${principal.scopes.join(", ")}`;
      if (account) account.hidden = false;
      return principal;
    } catch (err) {
      fail(err);
      return null;
    }
  }

  async function showProjectName() {
    const el = $("project-name");
    if (!el || !projectId) return;
    remember(projectId);
    try {
      const { project } = await api("GET", `/v1/projects/${projectId}`);
      if (project && project.name) el.textContent = project.name;
    } catch {
      // Without GET /v1/projects/{id} (or its scope) the id stands for the name.
    }
  }

  function recentProjects() {
    try {
      const list = JSON.parse(session.get(STORE.recent) || "[]");
      return Array.isArray(list) ? list.filter((id) => /^prj_[0-9a-z]{26}$/.test(id)) : [];
    } catch {
      return [];
    }
  }

  function remember(id) {
    session.set(STORE.recent, JSON.stringify([id, ...recentProjects().filter((p) => p !== id)].slice(0, 10)));
  }

  // ---- pages --------------------------------------------------------------------------------

  async function signInPage() {
    const form = $("sign-in-form");
    const input = $("api-key");
    const error = $("sign-in-error");
    const params = new URLSearchParams(location.search);
    const raw = params.get("next") || "";
    // Only a console path of this origin: never an open redirect.
    const next = /^\/console\/[\w\-/]*$/.test(raw) ? raw : "/console/projects";
    const message = session.get(STORE.flash);
    if (message) {
      session.remove(STORE.flash);
      error.textContent = message;
      error.hidden = false;
    } else if (session.get(STORE.credential)) {
      location.replace(next);
      return;
    }

    const signIn = async (credential, button, remember = credential) => {
      error.hidden = true;
      button.disabled = true;
      try {
        await api("GET", "/v1/me", undefined, credential);
        session.set(STORE.credential, remember);
        location.assign(next);
      } catch (err) {
        error.textContent =
          err.status === 401
            ? `This key was not accepted: ${err.message}. Check that you copied all of it, and that it has not been revoked or expired.`
            : err.message;
        error.hidden = false;
        input.focus();
      } finally {
        button.disabled = false;
      }
    };

    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const credential = input.value.trim();
      const button = form.querySelector("button[type=submit]");
      if (!credential) {
        error.textContent = "Paste your API key first.";
        error.hidden = false;
        input.focus();
        return;
      }
      if (!/^capy_live_\S+$/.test(credential) && !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(credential)) {
        error.textContent = "That is not a CapyDB API key: keys start with capy_live_.";
        error.hidden = false;
        input.focus();
        return;
      }
      void signIn(credential, button);
    });

    // With Clerk configured, a CapyDB dashboard session of this site (Clerk's __session cookie) can sign in too.
    const sessionButton = $("use-session");
    if (sessionButton && clerkSession()) {
      $("clerk-sign-in").hidden = false;
      sessionButton.addEventListener("click", () => void signIn(clerkSession(), sessionButton, SESSION_MARK));
    }
  }

  async function projectsPage() {
    const box = $("projects");
    const me = await showAccount();
    if (!me) return;
    let projects = null;
    let why = "";
    try {
      projects = (await api("GET", "/v1/projects")).projects;
    } catch (err) {
      if (handleSignedOut(err)) return;
      why = err.status === 403 ? "This key may not list projects (it lacks the projects:read scope)." : err.status === 404 ? "" : err.message;
    }
    if (!projects) {
      const known = me.project_id ? [me.project_id] : [];
      projects = [...new Set([...known, ...recentProjects()])].map((id) => ({ id, name: id }));
    }
    box.removeAttribute("aria-busy");
    if (!projects.length) {
      box.replaceChildren(h("p", {}, why || "No project to show.", " Open a project by its id below (it is in the CapyDB dashboard, and `npm start` prints the local one)."));
      return;
    }
    box.replaceChildren(
      why ? h("p", { class: "muted" }, why, " These are the projects this key is bound to or that you opened in this tab.") : "",
      h(
        "ul",
        { class: "project-list" },
        projects.map((p) =>
          h(
            "li",
            {},
            h(
              "a",
              { href: `/console/projects/${encodeURIComponent(p.id)}`, "data-project-id": p.id },
              h("strong", {}, p.name || p.id),
              p.name && p.name !== p.id ? h("code", { class: "muted" }, p.id) : "",
              p.database_name
                ? h("span", { class: "muted meta" }, [p.environment === "non_production" ? "non-production" : p.environment, `database ${p.database_name}`, p.postgres_version ? `PostgreSQL ${p.postgres_version}` : ""].filter(Boolean).join(" · "))
                : "",
            ),
          ),
        ),
      ),
    );
  }

  function openProjectForm() {
    const form = $("open-project");
    if (!form) return;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const input = $("project-id");
      const id = input.value.trim();
      if (!/^prj_[0-9a-z]{26}$/.test(id)) {
        flash("A project id looks like prj_ followed by 26 lowercase letters and digits.");
        input.focus();
        return;
      }
      location.assign(`/console/projects/${id}`);
    });
  }

  // Backups ------------------------------------------------------------------------------------

  const unsettled = (b) => b.state === "pending" || b.state === "running" || (b.state === "completed" && (b.verification_state === "pending" || b.verification_state === "running"));

  async function refreshBackups() {
    const { backups } = await api("GET", `/v1/projects/${projectId}/backups?limit=100`);
    fillTable(
      $("backups"),
      backups.map((b) => ({
        id: b.id,
        signature: `${b.state}/${b.verification_state}/${b.size_bytes}/${b.verified_at}`,
        cols: ["created", "label", "state", "verification", "size", "actions"],
        cells: [
          h("span", {}, when(b.created_at), h("br"), h("code", { class: "muted" }, b.id)),
          b.label || "—",
          h("span", {}, badge(b.state), b.state === "failed" && b.verification_error ? h("span", { class: "detail" }, b.verification_error) : ""),
          h(
            "span",
            {},
            badge(b.verification_state),
            b.verified_at ? h("span", { class: "muted" }, " ", when(b.verified_at)) : "",
            b.state !== "failed" && b.verification_state === "failed" && b.verification_error ? h("span", { class: "detail" }, b.verification_error) : "",
          ),
          { content: formatBytes(b.size_bytes), className: "num" },
          backupActions(b),
        ],
      })),
      "No backups yet. Back up now, or set a schedule.",
    );
    void showBackupChart(backups);
    return backups;
  }

  /** What can be done with a backup: only a completed one has a dump to download. */
  function backupActions(b) {
    const name = b.label ? `${b.label} (${b.id})` : b.id;
    if (b.state !== "completed") return "";
    return h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "small secondary", "data-action": "download", "aria-label": `Download backup ${name}` }, "Download"),
      b.verification_state === "verified"
        ? h("button", { type: "button", class: "small secondary", "data-action": "restore", "data-backup-key": b.backup_key, "aria-label": `Restore backup ${name} into a new preview` }, "Restore into a preview")
        : "",
    );
  }

  /**
   * Restores a backup (or a restore point) into a new preview database: starts the job, follows
   * it, and when it is done points to the preview, whose page shows its connection string.
   */
  async function restoreIntoPreview(source, status, button) {
    button.disabled = true;
    try {
      const { job } = await api("POST", `/v1/projects/${projectId}/restores`, { ...source, target_kind: "new_preview" });
      const jobLink = h("a", { href: `/console/jobs/${job.id}` }, job.id);
      setStatus(status, "Restoring into a new preview: job ", jobLink, " queued.");
      const final = await watchJob(job.id, async (j) => setStatus(status, "Restoring into a new preview: job ", jobLink, `: ${stop(describeJob(j))}`));
      const previewLink = h("a", { href: `/console/projects/${projectId}/previews#${job.preview_database_id}` }, "Open the preview and its connection string");
      if (!final) setStatus(status, "Restore job ", jobLink, " started. ", previewLink);
      else if (final.state === "completed") setStatus(status, "Restored into preview ", h("code", {}, job.preview_database_id), ". ", previewLink, ".");
      else setStatus(status, "The restore failed: ", stop(final.error || "unknown error"), " See job ", jobLink, ".");
    } catch (err) {
      fail(err);
    } finally {
      button.disabled = false;
    }
  }

  async function downloadBackup(backupId, button) {
    const status = $("backup-action-status");
    button.disabled = true;
    try {
      const { download } = await api("GET", `/v1/projects/${projectId}/backups/${backupId}/download`);
      // The signed URL is a credential for its lifetime: used at once, never left in the page.
      const a = h("a", { href: download.download_url, download: `${backupId}.dump`, rel: "noopener noreferrer" });
      document.body.append(a);
      a.click();
      a.remove();
      setStatus(
        status,
        `Downloading ${backupId}.dump (${formatBytes(download.size_bytes)}, a pg_dump custom archive for pg_restore). Its SHA-256 is `,
        h("code", { class: "hash" }, download.sha256),
        ".",
      );
    } catch (err) {
      fail(err);
    } finally {
      button.disabled = false;
    }
  }

  let backupsPoll = null;
  /** While any backup is still being made or verified, the list refreshes itself. */
  function pollBackupsWhileBusy(backups) {
    if (backupsPoll || !backups.some(unsettled)) return;
    backupsPoll = (async () => {
      for (;;) {
        await sleep(POLL_MS * 2);
        try {
          if (!(await refreshBackups()).some(unsettled)) break;
        } catch (err) {
          if (handleSignedOut(err)) return;
        }
      }
      backupsPoll = null;
    })();
  }

  function describeJob(job, started) {
    const attempt = job.attempts > 0 ? `, attempt ${job.attempts} of ${job.max_attempts}` : "";
    const elapsed = formatDuration((job.completed_at ? Date.parse(job.completed_at) : Date.now()) - Date.parse(started || job.created_at));
    if (job.state === "pending") return job.attempts > 0 ? `waiting to retry${attempt} (${job.error || "transient failure"})` : `queued (${elapsed})`;
    if (job.state === "running") return `running${attempt} (${elapsed})`;
    if (job.state === "completed") return `completed in ${elapsed}`;
    return `failed: ${job.error || "unknown error"}`;
  }

  /**
   * Polls a job (as the CLI's --wait does) until it completes or fails, calling `onTick` each
   * time; answers the final job, or null when the key may not read jobs.
   */
  async function watchJob(jobId, onTick) {
    for (;;) {
      let job;
      try {
        job = (await api("GET", `/v1/jobs/${jobId}`)).job;
      } catch (err) {
        if (handleSignedOut(err)) return null;
        if (err.status === 403 || err.status === 404) return null;
        await sleep(POLL_MS * 3);
        continue;
      }
      await onTick(job);
      if (job.state === "completed" || job.state === "failed") return job;
      await sleep(POLL_MS);
    }
  }

  async function backupsPage() {
    void showAccount();
    void showProjectName();
    void showScheduleSummary();
    openBackupNow();
    $("backups").addEventListener("click", (e) => {
      const button = e.target.closest("button[data-action]");
      const id = button?.closest("tr")?.dataset.id;
      if (!button || !id) return;
      if (button.dataset.action === "download") void downloadBackup(id, button);
      if (button.dataset.action === "restore") void restoreIntoPreview({ backup_key: button.dataset.backupKey }, $("backup-action-status"), button);
    });
    void showPitr();
    try {
      pollBackupsWhileBusy(await refreshBackups());
    } catch (err) {
      fail(err);
      fillTable($("backups"), [], "The backups could not be loaded.");
      setStatus($("backup-chart-summary"), "The backups could not be loaded.");
    }
  }

  async function showScheduleSummary() {
    const el = $("schedule-summary");
    try {
      const [s] = (await api("GET", `/v1/projects/${projectId}/scheduled-backups`)).scheduled_backups;
      const link = h("a", { href: `/console/projects/${projectId}/schedule` }, s ? "Change" : "Set a schedule");
      el.replaceChildren(
        s
          ? `${s.is_active ? "Scheduled" : "Schedule paused"}: daily at ${pad(s.cron_hour)}:${pad(s.cron_minute)} UTC, each kept ${s.retention_days} days. `
          : "No schedule: backups are taken only on demand. ",
        link,
      );
    } catch (err) {
      if (!handleSignedOut(err)) el.replaceChildren(h("a", { href: `/console/projects/${projectId}/schedule` }, "Schedule"));
    }
  }

  function openBackupNow() {
    const form = $("backup-now-form");
    const progress = $("backup-progress");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const button = form.querySelector("button[type=submit]");
      const label = $("backup-label").value.trim();
      button.disabled = true;
      flash("");
      try {
        const { job } = await api("POST", `/v1/projects/${projectId}/backups`, label ? { label } : {});
        $("backup-label").value = "";
        const jobLink = h("a", { href: `/console/jobs/${job.id}` }, job.id);
        setStatus(progress, "Backup job ", jobLink, " queued.");
        await refreshBackups();
        const final = await watchJob(job.id, async (j) => {
          setStatus(progress, "Backup job ", jobLink, `: ${stop(describeJob(j))}`);
          try {
            await refreshBackups();
          } catch (err) {
            handleSignedOut(err);
          }
        });
        if (!final) pollBackupsWhileBusy(await refreshBackups());
      } catch (err) {
        fail(err, null);
        setStatus(progress);
      } finally {
        button.disabled = false;
      }
    });
  }

  // Point-in-time recovery: the restorable window as a timeline, and a time picker on it ------

  const SVG_NS = "http://www.w3.org/2000/svg";
  /** An SVG element (attributes only: the Content-Security-Policy allows no inline style). */
  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined && v !== false) el.setAttribute(k, String(v));
    for (const c of children.flat()) if (c) el.append(c);
    return el;
  }
  const svgTitle = (text) => svg("title", {}, text);

  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  /** "6 Dec 2026, 14:31:05 UTC" (milliseconds when the time has them: a restore is exact to the commit). */
  function utc(t) {
    const d = new Date(t);
    if (!Number.isFinite(d.getTime())) return "—";
    const ms = d.getUTCMilliseconds();
    const clock = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${ms ? `.${String(ms).padStart(3, "0")}` : ""}`;
    return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${clock} UTC`;
  }
  const isoOf = (t) => new Date(t).toISOString().replace(/\.000Z$/, "Z");
  /** The value of a datetime-local field (read and written as UTC: the label says so). */
  const fieldValue = (t) => new Date(t).toISOString().replace(/Z$/, "").replace(/\.000$/, "");
  const parseField = (v) => (/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,3})?)?$/.test(v) ? Date.parse(`${v}Z`) : Number.NaN);

  function describeLag(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    return seconds < 1 ? "under a second" : formatDuration(seconds * 1000);
  }

  function describeDrill(d) {
    if (!d) return "no drill yet";
    const took = formatDuration(d.seconds * 1000);
    if (d.ok) return `passed ${ago(d.at)}: restored ${utc(d.restore_time)} in ${took}`;
    return `failed ${ago(d.at)}, restoring ${utc(d.restore_time)} (after ${took}): ${stop(d.error || "unknown error")}`;
  }

  /**
   * Where a time falls in the window, by the API's rules (core/restores/pitr.ts): after the latest
   * restorable time it is moved back to it; before the window or inside a gap it is refused,
   * naming the bounds. The API decides in the end: this only says it before the request.
   */
  function judgeTime(p, t) {
    const earliest = Date.parse(p.earliest_restore_time);
    const latest = Date.parse(p.latest_restore_time);
    const bounds = `the restorable window is ${utc(earliest)} to ${utc(latest)}`;
    if (!Number.isFinite(t)) return { ok: false, why: "Type a date and time in UTC, like 2026-12-06 14:31:00, or pick one on the timeline." };
    if (t < earliest) return { ok: false, why: `${utc(t)} is before the earliest restorable time: ${bounds}.` };
    if (t > latest) return { ok: true, at: latest, clamped: true };
    for (const g of p.gaps) {
      const from = g.from ? Date.parse(g.from) : -Infinity;
      const to = g.to ? Date.parse(g.to) : Infinity;
      if (from < t && t < to) {
        return {
          ok: false,
          why: `${utc(t)} falls in a gap of the WAL archive, from ${g.from ? utc(from) : "before the window"} to ${g.to ? utc(to) : "the next base backup"}: no restore can reach it; ${bounds}.`,
        };
      }
    }
    return { ok: true, at: t, clamped: false };
  }

  /** The covered stretches: earliest to latest with the gaps taken out. */
  function coveredSpans(p) {
    let spans = [[Date.parse(p.earliest_restore_time), Date.parse(p.latest_restore_time)]];
    for (const g of p.gaps) {
      const from = g.from ? Date.parse(g.from) : -Infinity;
      const to = g.to ? Date.parse(g.to) : Infinity;
      spans = spans.flatMap(([a, b]) => {
        if (to <= a || from >= b) return [[a, b]];
        // A stretch's ends restore (as the API counts them), even one a single second long.
        return [from >= a ? [a, from] : null, to <= b ? [to, b] : null].filter(Boolean);
      });
    }
    return spans;
  }

  const pitrState = { pitr: null, picked: null, domain: null };

  async function showPitr() {
    const summary = $("pitr-summary");
    let pitr;
    try {
      ({ pitr } = await api("GET", `/v1/projects/${projectId}/pitr`));
    } catch (err) {
      if (handleSignedOut(err)) return;
      summary.textContent =
        err.status === 403 ? "This key may not read the restorable window (it lacks the backups:read scope)." : `The restorable window could not be loaded: ${stop(err.message)}`;
      return;
    }
    const first = pitrState.pitr === null;
    pitrState.pitr = pitr;
    renderPitr(pitr);
    if (first) {
      openPitrPicker();
      // The lag moves: the window is read again while the page is open.
      setInterval(() => void refreshPitr(), 30_000);
    }
  }

  async function refreshPitr() {
    try {
      const { pitr } = await api("GET", `/v1/projects/${projectId}/pitr`);
      pitrState.pitr = pitr;
      renderPitr(pitr);
    } catch (err) {
      handleSignedOut(err);
    }
  }

  function renderPitr(p) {
    const summary = $("pitr-summary");
    const timeline = $("pitr-timeline");
    const facts = $("pitr-facts");
    const form = $("pitr-form");
    summary.dataset.available = String(p.available);
    if (!p.available) {
      timeline.hidden = true;
      form.hidden = true;
      summary.textContent =
        p.window_days === 0
          ? "No archive: this project's cluster has no WAL archive, so there is no point-in-time recovery. Restore a backup instead."
          : "The WAL archive has no verified base backup yet, so no time can be restored to yet. The first one is taken within minutes of archiving starting.";
      facts.hidden = p.window_days === 0;
      facts.replaceChildren(h("dt", {}, "Kept"), h("dd", {}, `${p.window_days} days`), h("dt", {}, "Last drill"), h("dd", { id: "pitr-drill" }, describeDrill(p.last_drill)));
      return;
    }
    const earliest = Date.parse(p.earliest_restore_time);
    const latest = Date.parse(p.latest_restore_time);
    summary.textContent = `Restorable to any moment from ${utc(earliest)} to ${utc(latest)}${p.gaps.length ? `, except ${p.gaps.length === 1 ? "one gap" : `${p.gaps.length} gaps`}` : ""}. The archive is ${describeLag(p.lag_seconds)} behind now.`;

    // The text alternative of the timeline: every fact it draws, in words.
    const list = (items, empty) => (items.length ? h("ul", { class: "plain" }, items.map((i) => h("li", {}, i))) : empty);
    facts.replaceChildren(
      h("dt", {}, "Restorable"),
      h("dd", { id: "pitr-window" }, `from ${utc(earliest)} to ${utc(latest)}`),
      h("dt", {}, "Lag"),
      h("dd", { id: "pitr-lag" }, `${describeLag(p.lag_seconds)} (now minus the latest restorable time)`),
      h("dt", {}, "Kept"),
      h("dd", {}, `${p.window_days} days`),
      h("dt", {}, "Base backups"),
      h(
        "dd",
        { id: "pitr-base-backups" },
        list(
          [...p.base_backups].sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at)).map((b) => `${utc(b.finished_at || b.started_at)}${b.size_bytes ? ` (${formatBytes(b.size_bytes)})` : ""}${b.verified_at ? ", verified" : ""}`),
          "none",
        ),
      ),
      h("dt", {}, "Gaps"),
      h(
        "dd",
        { id: "pitr-gaps" },
        list(
          p.gaps.map((g) => `from ${g.from ? utc(g.from) : "before the window"} to ${g.to ? utc(g.to) : "the next base backup"}: not restorable`),
          "none",
        ),
      ),
      h("dt", {}, "Last drill"),
      h("dd", { id: "pitr-drill" }, describeDrill(p.last_drill)),
    );
    facts.hidden = false;
    form.hidden = false;
    timeline.hidden = false;
    if (pitrState.picked === null) pitrState.picked = latest;
    drawTimeline(p);
    showPicked();
  }

  /**
   * The window drawn from its oldest fact to now: base backups as ticks, WAL coverage as a bar,
   * gaps marked, the lag as the stretch from the latest restorable time to now, and the picked
   * time as a cursor. The drawing is a slider: click it, or use the arrow keys.
   */
  function drawTimeline(p) {
    const box = $("pitr-timeline");
    const now = Math.max(Date.now(), Date.parse(p.latest_restore_time));
    const times = [Date.parse(p.earliest_restore_time), ...p.base_backups.map((b) => Date.parse(b.started_at)), ...p.gaps.filter((g) => g.from).map((g) => Date.parse(g.from))];
    const start = Math.min(...times.filter(Number.isFinite));
    const span = Math.max(now - start, 60_000);
    const lo = start - span * 0.02;
    const hi = now + span * 0.02;
    pitrState.domain = { lo, hi };
    const W = 1000;
    const x = (t) => (((Math.min(Math.max(t, lo), hi) - lo) / (hi - lo)) * W).toFixed(2);
    // A gap of seconds in a window of days still shows (0.6% of the width at least).
    const rect = (a, b, y, height, attrs, title) =>
      svg("rect", { x: x(a), y, width: Math.max(Number(x(b)) - Number(x(a)), attrs.class === "tl-gap" ? 6 : 2).toFixed(2), height, ...attrs }, svgTitle(title));

    const parts = [svg("rect", { x: 0, y: 26, width: W, height: 12, class: "tl-track" })];
    parts.push(rect(Date.parse(p.latest_restore_time), now, 26, 12, { class: "tl-lag", "data-kind": "lag" }, `Not restorable yet: the archive's lag, ${describeLag(p.lag_seconds)}`));
    for (const [a, b] of coveredSpans(p)) {
      parts.push(rect(a, b, 22, 20, { class: "tl-covered", "data-kind": "coverage" }, `WAL coverage: restorable from ${utc(a)} to ${utc(b)}`));
    }
    for (const g of p.gaps) {
      const from = g.from ? Date.parse(g.from) : lo;
      const to = g.to ? Date.parse(g.to) : Date.parse(p.latest_restore_time);
      parts.push(rect(from, to, 18, 28, { class: "tl-gap", "data-kind": "gap" }, `Gap: not restorable from ${g.from ? utc(from) : "before the window"} to ${g.to ? utc(to) : "the next base backup"}`));
    }
    for (const b of p.base_backups) {
      const at = Date.parse(b.finished_at || b.started_at);
      parts.push(
        svg(
          "line",
          { x1: x(at), x2: x(at), y1: 4, y2: 60, class: "tl-tick", "data-kind": "base-backup", "data-id": b.id, "vector-effect": "non-scaling-stroke" },
          svgTitle(`Base backup, finished ${utc(at)}${b.size_bytes ? `, ${formatBytes(b.size_bytes)}` : ""}`),
        ),
      );
    }
    parts.push(svg("line", { x1: 0, x2: 0, y1: 0, y2: 64, class: "tl-cursor", id: "pitr-cursor", "vector-effect": "non-scaling-stroke" }));

    let drawing = box.querySelector("svg");
    const fresh = !drawing;
    if (fresh) {
      drawing = svg("svg", {
        viewBox: `0 0 ${W} 64`,
        preserveAspectRatio: "none",
        role: "slider",
        tabindex: "0",
        "aria-label": "Point in time to restore to",
        "aria-describedby": "pitr-summary",
      });
      box.replaceChildren(
        drawing,
        h("div", { class: "tl-axis", "aria-hidden": "true" }, h("span", { id: "pitr-axis-start" }), h("span", { id: "pitr-axis-end" })),
        h(
          "p",
          { class: "tl-legend", "aria-hidden": "true" },
          h("span", { class: "key covered" }, "restorable"),
          h("span", { class: "key gap" }, "gap"),
          h("span", { class: "key tick" }, "base backup"),
          h("span", { class: "key lag" }, "lag"),
          h("span", { class: "key cursor" }, "your pick"),
        ),
      );
      drawing.addEventListener("click", (e) => {
        const r = drawing.getBoundingClientRect();
        const { lo: from, hi: to } = pitrState.domain;
        const t = from + ((e.clientX - r.left) / r.width) * (to - from);
        // To the second, unless a pixel is worth less than that (a window of minutes on a wide screen).
        const unit = (to - from) / r.width >= 1000 ? 1000 : 1;
        pick(Math.round(t / unit) * unit, true);
        drawing.focus();
      });
      drawing.addEventListener("keydown", (e) => {
        const p2 = pitrState.pitr;
        if (!p2?.available) return;
        const step = e.shiftKey ? 1000 : 60_000;
        const moves = {
          ArrowLeft: -step,
          ArrowDown: -step,
          ArrowRight: step,
          ArrowUp: step,
          PageDown: -3_600_000,
          PageUp: 3_600_000,
        };
        let t;
        if (e.key in moves) t = (pitrState.picked ?? Date.parse(p2.latest_restore_time)) + moves[e.key];
        else if (e.key === "Home") t = Date.parse(p2.earliest_restore_time);
        else if (e.key === "End") t = Date.parse(p2.latest_restore_time);
        else return;
        e.preventDefault();
        pick(Math.min(Math.max(t, pitrState.domain.lo), pitrState.domain.hi), true);
      });
    }
    drawing.replaceChildren(...parts);
    drawing.setAttribute("aria-valuemin", String(Math.floor(Date.parse(p.earliest_restore_time) / 1000)));
    drawing.setAttribute("aria-valuemax", String(Math.floor(Date.parse(p.latest_restore_time) / 1000)));
    const second = (t) => Math.floor(t / 1000) * 1000;
    $("pitr-axis-start").textContent = utc(second(start));
    $("pitr-axis-end").textContent = `now, ${utc(second(now))}`;
  }

  /** A time picked on the timeline or typed: the field, the cursor and the sentence follow it. */
  function pick(t, fromTimeline) {
    pitrState.picked = t;
    if (fromTimeline) $("pitr-time").value = fieldValue(t);
    showPicked();
  }

  function showPicked() {
    const p = pitrState.pitr;
    const t = pitrState.picked;
    const what = $("pitr-what");
    const error = $("pitr-error");
    const button = $("pitr-restore");
    if (!p?.available) return;
    if (!$("pitr-time").value && Number.isFinite(t)) $("pitr-time").value = fieldValue(t);
    const verdict = judgeTime(p, t);
    const drawing = $("pitr-timeline").querySelector("svg");
    const cursor = $("pitr-cursor");
    if (drawing && Number.isFinite(t)) {
      const { lo, hi } = pitrState.domain;
      const cx = (((Math.min(Math.max(t, lo), hi) - lo) / (hi - lo)) * 1000).toFixed(2);
      cursor.setAttribute("x1", cx);
      cursor.setAttribute("x2", cx);
      cursor.classList.toggle("refused", !verdict.ok);
      drawing.setAttribute("aria-valuenow", String(Math.floor(t / 1000)));
      drawing.setAttribute("aria-valuetext", verdict.ok ? `${utc(verdict.at)}, restorable` : `${utc(t)}, not restorable`);
    }
    button.disabled = !verdict.ok;
    if (!verdict.ok) {
      what.textContent = "";
      error.textContent = verdict.why;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    const clampNote = verdict.clamped
      ? ` ${utc(t)} is later than the latest restorable time: the restore is moved back to ${utc(verdict.at)} (the archive is ${describeLag(p.lag_seconds)} behind now).`
      : "";
    const sentence = `Will restore the project's database as it was at ${utc(verdict.at)} into a new preview database.${clampNote}`;
    // Only a change is announced (the window is read again every 30 s).
    if (what.textContent !== sentence) what.textContent = sentence;
  }

  function openPitrPicker() {
    const form = $("pitr-form");
    const input = $("pitr-time");
    input.addEventListener("input", () => {
      pitrState.picked = parseField(input.value);
      showPicked();
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const p = pitrState.pitr;
      const t = parseField(input.value);
      pitrState.picked = t;
      showPicked();
      const verdict = judgeTime(p, t);
      if (!verdict.ok) {
        input.focus();
        return;
      }
      if (!confirm(`Restore the project's database as it was at ${utc(verdict.at)} into a new preview database?`)) return;
      const button = $("pitr-restore");
      const progress = $("pitr-progress");
      const error = $("pitr-error");
      button.disabled = true;
      try {
        const { job, pitr } = await api("POST", `/v1/projects/${projectId}/restores`, { restore_time: isoOf(t), target_kind: "new_preview" });
        const at = utc(pitr.restore_time);
        const clamped = pitr.restore_time_clamped ? ` (${utc(pitr.requested_restore_time)} was after the latest restorable time: moved back to it)` : "";
        const jobLink = h("a", { href: `/console/jobs/${job.id}` }, job.id);
        const head = `Restoring the database as it was at ${at}${clamped} into a new preview: job `;
        setStatus(progress, head, jobLink, " queued.");
        const final = await watchJob(job.id, async (j) => setStatus(progress, head, jobLink, `: ${stop(describeJob(j))}`));
        const previewLink = h("a", { href: `/console/projects/${projectId}/previews#${job.preview_database_id}` }, "Open the preview and its connection string");
        if (!final) setStatus(progress, "Restore job ", jobLink, " started. ", previewLink, ".");
        else if (final.state === "completed")
          setStatus(progress, "Restored into preview ", h("code", {}, job.preview_database_id), `: the project's database as it was at ${at}${clamped}. `, previewLink, ".");
        else setStatus(progress, "The restore failed: ", stop(final.error || "unknown error"), " See job ", jobLink, ".");
      } catch (err) {
        // The API's refusal names the window or the gap: shown as it says it.
        fail(err, error);
        setStatus(progress);
      } finally {
        button.disabled = !judgeTime(pitrState.pitr, pitrState.picked).ok;
      }
    });
  }

  // The backups' size and duration over time --------------------------------------------------

  let chartSignature = null;

  /**
   * A small chart of the completed backups, oldest first: size, and how long the backup job took
   * (dump, upload and verification: the Backup resource carries no timings, its job does; a backup
   * and its job are created in the same millisecond). A table below says the same in numbers.
   */
  async function showBackupChart(backups) {
    const done = backups.filter((b) => b.state === "completed" && b.size_bytes > 0).sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
    const signature = done.map((b) => `${b.id}/${b.verification_state}`).join(",");
    if (signature === chartSignature) return;
    chartSignature = signature;
    const summary = $("backup-chart-summary");
    const box = $("backup-chart");
    if (!done.length) {
      box.replaceChildren();
      summary.textContent = "No completed backup yet: the chart starts with the first one.";
      fillTable($("backup-chart-table"), [], "No completed backup yet.");
      return;
    }
    // The backup jobs, newest first, as far back as the oldest backup shown (at most 5 pages).
    const jobs = new Map();
    let jobsNote = "";
    try {
      let cursor = "";
      for (let i = 0; i < 5; i++) {
        const page = await api("GET", `/v1/projects/${projectId}/jobs?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        for (const j of page.jobs) if (j.type === "project.backup") jobs.set(j.created_at, j);
        cursor = page.nextCursor || "";
        if (!cursor || page.jobs.some((j) => Date.parse(j.created_at) < Date.parse(done[0].created_at))) break;
      }
    } catch (err) {
      if (handleSignedOut(err)) return;
      jobsNote = err.status === 403 ? " Durations need the jobs:read scope, which this key lacks." : " The durations could not be loaded.";
    }
    if (signature !== chartSignature) return; // a newer list came meanwhile
    const points = done.map((b) => {
      const j = jobs.get(b.created_at);
      const ms = j?.started_at && j.completed_at ? Date.parse(j.completed_at) - Date.parse(j.started_at) : null;
      return { b, t: Date.parse(b.created_at), size: b.size_bytes, ms };
    });
    const timed = points.filter((pt) => pt.ms !== null);
    const maxSize = Math.max(...points.map((pt) => pt.size));
    const maxMs = Math.max(1000, ...timed.map((pt) => pt.ms));
    const first = points[0].t;
    const last = points.at(-1).t;
    const W = 600;
    const H = 90;
    const x = (t) => (last === first ? W / 2 : 12 + ((t - first) / (last - first)) * (W - 24)).toFixed(1);
    const panel = (kind, values, max, label) => {
      const y = (v) => (H - 8 - (v / max) * (H - 16)).toFixed(1);
      const pts = values.map((pt) => [x(pt.t), y(kind === "size" ? pt.size : pt.ms), pt]);
      return h(
        "figure",
        { class: "chart-panel" },
        h("figcaption", {}, label),
        svg(
          "svg",
          { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${label}, one point per backup; the table below gives the numbers`, "data-series": kind },
          svg("line", { x1: 0, x2: W, y1: H - 8, y2: H - 8, class: "chart-axis" }),
          pts.length > 1 ? svg("polyline", { points: pts.map(([a, b]) => `${a},${b}`).join(" "), class: "chart-line" }) : null,
          pts.map(([a, b, pt]) =>
            svg(
              "circle",
              { cx: a, cy: b, r: 4.5, class: "chart-point", "data-backup-id": pt.b.id },
              svgTitle(`${utc(pt.t)}: ${kind === "size" ? formatBytes(pt.size) : `took ${formatDuration(pt.ms)}`}`),
            ),
          ),
        ),
      );
    };
    box.replaceChildren(
      panel("size", points, maxSize, `Size (up to ${formatBytes(maxSize)})`),
      timed.length ? panel("duration", timed, maxMs, `Time the backup took: dump, upload and verification (up to ${formatDuration(maxMs)})`) : "",
      h("div", { class: "tl-axis", "aria-hidden": "true" }, h("span", {}, utc(first)), last !== first ? h("span", {}, utc(last)) : ""),
    );
    const sizes = points.map((pt) => pt.size);
    summary.textContent =
      `${points.length} completed ${points.length === 1 ? "backup" : "backups"} from ${utc(first)} to ${utc(last)}: size from ${formatBytes(Math.min(...sizes))} to ${formatBytes(maxSize)}, the newest ${formatBytes(sizes.at(-1))}` +
      (timed.length ? `; the backup took from ${formatDuration(Math.min(...timed.map((pt) => pt.ms)))} to ${formatDuration(maxMs)}.` : ".") +
      jobsNote;
    fillTable(
      $("backup-chart-table"),
      points.map((pt) => ({
        id: pt.b.id,
        signature: `${pt.size}/${pt.ms}`,
        cols: ["created", "size", "took"],
        cells: [utc(pt.t), { content: formatBytes(pt.size), className: "num" }, { content: pt.ms === null ? "—" : formatDuration(pt.ms), className: "num" }],
      })),
      "No completed backup yet.",
    );
  }

  // Schedule -----------------------------------------------------------------------------------

  function nextRun(s) {
    const now = new Date();
    const next = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), s.cron_hour, s.cron_minute));
    if (next <= now) next.setUTCDate(next.getUTCDate() + 1);
    return next.toISOString();
  }

  let schedule = null;

  function renderSchedule() {
    const view = $("schedule-view");
    view.removeAttribute("aria-busy");
    const toggle = $("schedule-toggle");
    if (!schedule) {
      view.replaceChildren(h("dt", {}, "State"), h("dd", {}, "No schedule: backups are taken only on demand. Set one below."));
      toggle.hidden = true;
      return;
    }
    const s = schedule;
    const local = new Date(Date.UTC(2000, 0, 1, s.cron_hour, s.cron_minute)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const rows = [
      ["State", h("span", { id: "schedule-state" }, badge(s.is_active ? "active" : "paused"))],
      ["Runs", `daily at ${pad(s.cron_hour)}:${pad(s.cron_minute)} UTC (${local} your time)`],
      ["Next run", s.is_active ? when(nextRun(s)) : "none while paused"],
      ["Keeps each backup", `${s.retention_days} days`],
      ["Label", s.label],
      ["Last run", s.last_run_at ? h("span", {}, when(s.last_run_at), s.last_job_id ? h("span", {}, " · ", h("a", { href: `/console/jobs/${s.last_job_id}` }, "its job")) : "") : "not yet"],
      ["Updated", when(s.updated_at)],
    ];
    view.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    toggle.hidden = false;
    toggle.textContent = s.is_active ? "Pause schedule" : "Resume schedule";
    toggle.className = s.is_active ? "secondary" : "";
  }

  function fillScheduleForm(s) {
    $("cron-hour").value = String(s ? s.cron_hour : 2);
    $("cron-minute").value = String(s ? s.cron_minute : 0);
    $("retention-days").value = String(s ? s.retention_days : 14);
    $("schedule-label").value = s ? s.label : "default";
    $("schedule-active").checked = s ? s.is_active : true;
  }

  async function putSchedule(fields) {
    const { scheduled_backup } = await api("PUT", `/v1/projects/${projectId}/scheduled-backups/default`, fields);
    schedule = scheduled_backup;
    renderSchedule();
    fillScheduleForm(schedule);
    return schedule;
  }

  function readInt(id, name, min, max) {
    const raw = $(id).value.trim();
    const n = Number(raw);
    if (raw === "" || !Number.isInteger(n) || n < min || n > max) {
      throw Object.assign(new Error(`${name} must be a whole number from ${min} to ${max}.`), { field: id });
    }
    return n;
  }

  async function schedulePage() {
    void showAccount();
    void showProjectName();
    const status = $("schedule-status");
    const error = $("schedule-error");
    try {
      schedule = (await api("GET", `/v1/projects/${projectId}/scheduled-backups`)).scheduled_backups[0] || null;
      renderSchedule();
      fillScheduleForm(schedule);
    } catch (err) {
      fail(err);
    }

    $("schedule-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      error.hidden = true;
      let fields;
      try {
        fields = {
          cron_hour: readInt("cron-hour", "The hour", 0, 23),
          cron_minute: readInt("cron-minute", "The minute", 0, 59),
          retention_days: readInt("retention-days", "The retention", 1, 365),
          label: $("schedule-label").value.trim() || "default",
          is_active: $("schedule-active").checked,
        };
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
        $(err.field)?.focus();
        return;
      }
      const button = e.target.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const s = await putSchedule(fields);
        setStatus(status, `Saved: ${s.is_active ? "" : "paused; "}daily at ${pad(s.cron_hour)}:${pad(s.cron_minute)} UTC, each backup kept ${s.retention_days} days.`);
      } catch (err) {
        fail(err, error);
      } finally {
        button.disabled = false;
      }
    });

    $("schedule-toggle").addEventListener("click", async (e) => {
      if (!schedule) return;
      const button = e.currentTarget;
      button.disabled = true;
      try {
        const { cron_hour, cron_minute, retention_days, label, is_active } = schedule;
        // PUT replaces the whole schedule, so the current values go with the flipped flag.
        const s = await putSchedule({ cron_hour, cron_minute, retention_days, label, is_active: !is_active });
        setStatus(status, s.is_active ? "Schedule resumed." : "Schedule paused: no scheduled backups until it is resumed.");
      } catch (err) {
        fail(err, error);
      } finally {
        button.disabled = false;
      }
    });
  }

  // Jobs ---------------------------------------------------------------------------------------

  const busy = (j) => j.state === "pending" || j.state === "running";
  const took = (j) => (j.started_at ? formatDuration((j.completed_at ? Date.parse(j.completed_at) : Date.now()) - Date.parse(j.started_at)) : "—");

  async function refreshJobs() {
    const { jobs } = await api("GET", `/v1/projects/${projectId}/jobs?limit=25`);
    fillTable(
      $("jobs"),
      jobs.map((j) => ({
        id: j.id,
        signature: `${j.state}/${j.attempts}`,
        cols: ["job", "type", "state", "attempts", "created", "took", "error"],
        cells: [
          h("a", { href: `/console/jobs/${j.id}` }, h("code", {}, j.id)),
          j.type,
          badge(j.state),
          { content: `${j.attempts} of ${j.max_attempts}`, className: "num" },
          when(j.created_at),
          { content: took(j), className: "num" },
          j.error ? h("span", { class: "detail" }, j.error) : "",
        ],
      })),
      "No jobs yet.",
    );
    return jobs;
  }

  async function jobsPage() {
    void showAccount();
    void showProjectName();
    try {
      let jobs = await refreshJobs();
      while (jobs.some(busy)) {
        await sleep(POLL_MS * 2);
        jobs = await refreshJobs();
      }
    } catch (err) {
      fail(err);
    }
  }

  function renderJob(job) {
    const steps = $("job-steps");
    const order = ["pending", "running", "done"];
    const at = job.state === "completed" || job.state === "failed" ? 2 : order.indexOf(job.state);
    for (const li of steps.children) {
      const i = order.indexOf(li.dataset.step);
      li.className = i < at ? "done" : i === at ? (job.state === "failed" ? "failed" : job.state === "completed" ? "done" : "current") : "";
      if (li.dataset.step === "done") li.textContent = job.state === "failed" ? "Failed" : job.state === "completed" ? "Completed" : "Finished";
      if (i === at) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    }
    $("job-status").textContent = stop(`This ${job.type} job is ${describeJob(job)}`);
    const link = $("job-project-link");
    link.href = `/console/projects/${job.project_id}/jobs`;
    link.textContent = "Back to the project's jobs";
    const facts = [
      ["State", badge(job.state)],
      ["Type", job.type],
      ["Attempts", `${job.attempts} of ${job.max_attempts}`],
      ["Created", when(job.created_at)],
      ["Started", when(job.started_at)],
      ["Finished", when(job.completed_at)],
      ["Took", took(job)],
      ["Worker", job.claimed_by || "—"],
      ["Holds", job.locked_resource || "—"],
      ["Retry class", job.retry_classification || "—"],
      ["Exit code", job.last_exit_code === null ? "—" : String(job.last_exit_code)],
      ["Error", job.error ? h("span", { class: "error" }, job.error) : "—"],
    ];
    $("job-details").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    $("job-stderr").textContent = job.last_stderr || "(nothing)";
    $("job-stdout").textContent = job.last_stdout || "(nothing)";
  }

  async function jobPage() {
    void showAccount();
    const jobId = body.dataset.jobId;
    const final = await watchJob(jobId, async (job) => renderJob(job)).catch((err) => fail(err));
    if (final === null) {
      try {
        await api("GET", `/v1/jobs/${jobId}`);
      } catch (err) {
        fail(err);
        $("job-status").textContent = "This job cannot be shown.";
      }
    }
  }

  // Previews -----------------------------------------------------------------------------------

  const previewBusy = (p) => p.state === "provisioning" || p.state === "resetting" || p.state === "deleting";

  function previewActions(p) {
    const buttons = [];
    if (p.state === "ready") {
      buttons.push(h("button", { type: "button", class: "small", "data-action": "connect", "aria-label": `Connection string of preview ${p.name}` }, "Connection string"));
      buttons.push(h("button", { type: "button", class: "small secondary", "data-action": "extend", "aria-label": `Keep preview ${p.name} 24 more hours` }, "Keep 24 h more"));
    }
    if (p.state === "ready" || p.state === "failed") {
      buttons.push(h("button", { type: "button", class: "small danger", "data-action": "delete", "aria-label": `Delete preview ${p.name}` }, "Delete"));
    }
    return h("div", { class: "actions" }, buttons);
  }

  /** The backup a preview holds, named by its id: the last part of its object key, `.../backups/<id>.dump`. */
  const backupIdOfKey = (key) => key.split("/").pop().replace(/\.dump$/, "");

  async function refreshPreviews() {
    const { preview_databases: previews } = await api("GET", `/v1/projects/${projectId}/preview-databases`);
    fillTable(
      $("previews"),
      previews.map((p) => ({
        id: p.id,
        signature: `${p.state}/${p.ttl_expires_at}/${p.last_error}`,
        cols: ["name", "state", "from", "expires", "actions"],
        cells: [
          h("span", {}, h("strong", {}, p.name), h("br"), h("code", { class: "muted" }, p.database_name)),
          h("span", {}, badge(p.state), p.last_error ? h("span", { class: "detail" }, p.last_error) : ""),
          p.source_kind === "backup" && p.source_backup_key ? h("code", { title: p.source_backup_key }, backupIdOfKey(p.source_backup_key)) : p.source_kind === "pitr" ? (p.source_restore_time ? h("span", {}, "the project as it was at ", h("time", { datetime: p.source_restore_time }, utc(p.source_restore_time))) : "the project at a point in time") : p.source_kind === "backup" ? "a backup" : "empty",
          p.state === "deleted" ? "—" : when(p.ttl_expires_at),
          previewActions(p),
        ],
      })),
      "No previews. Create one above, or restore a backup into one from the Backups page.",
    );
    const wanted = location.hash.slice(1);
    const row = wanted && $("previews").querySelector(`tr[data-id="${CSS.escape(wanted)}"]`);
    if (row && !row.classList.contains("target")) row.classList.add("target");
    return previews;
  }

  let previewsPoll = null;
  function pollPreviewsWhileBusy(previews) {
    if (previewsPoll || !previews.some(previewBusy)) return;
    previewsPoll = (async () => {
      for (;;) {
        await sleep(POLL_MS * 2);
        try {
          if (!(await refreshPreviews()).some(previewBusy)) break;
        } catch (err) {
          if (handleSignedOut(err)) return;
        }
      }
      previewsPoll = null;
    })();
  }

  async function showConnection(previewId, button) {
    const panel = $("connection");
    button.disabled = true;
    try {
      const [{ connections }, { preview }] = await Promise.all([
        api("GET", `/v1/preview-databases/${previewId}/connections`),
        api("GET", `/v1/preview-databases/${previewId}`),
      ]);
      $("connection-name").textContent = preview.name;
      $("connection-url").value = connections.direct_url;
      $("connection-help").textContent = `User ${connections.username}. ${connections.pooled_url ? `Pooled: ${connections.pooled_url}` : "There is no connection pooler for previews."} Expires ${new Date(preview.ttl_expires_at).toUTCString()}.`;
      setStatus($("copy-status"));
      panel.hidden = false;
      $("connection-url").focus();
      $("connection-url").select();
    } catch (err) {
      fail(err);
    } finally {
      button.disabled = false;
    }
  }

  async function previewsPage() {
    void showAccount();
    void showProjectName();
    const status = $("preview-action-status");
    const table = $("previews");
    table.addEventListener("click", async (e) => {
      const button = e.target.closest("button[data-action]");
      const id = button?.closest("tr")?.dataset.id;
      if (!button || !id) return;
      const name = button.closest("tr").querySelector("strong")?.textContent || id;
      if (button.dataset.action === "connect") return void showConnection(id, button);
      if (button.dataset.action === "extend") {
        button.disabled = true;
        try {
          const { preview } = await api("POST", `/v1/preview-databases/${id}/extend`, { ttl_hours: 24 });
          setStatus(status, `Preview ${preview.name} now expires ${new Date(preview.ttl_expires_at).toUTCString()}.`);
          await refreshPreviews();
        } catch (err) {
          fail(err);
        } finally {
          button.disabled = false;
        }
        return;
      }
      if (button.dataset.action === "delete") {
        if (!confirm(`Delete preview ${name} and its database? This cannot be undone.`)) return;
        button.disabled = true;
        try {
          const { job } = await api("DELETE", `/v1/preview-databases/${id}`);
          if (!$("connection").hidden && $("connection-name").textContent === name) hideConnection();
          setStatus(status, `Deleting preview ${name}: job `, h("a", { href: `/console/jobs/${job.id}` }, job.id), ".");
          const final = await watchJob(job.id, async () => void (await refreshPreviews()));
          setStatus(status, final && final.state === "failed" ? `Deleting preview ${name} failed: ${stop(final.error || "unknown error")}` : `Preview ${name} deleted.`);
          pollPreviewsWhileBusy(await refreshPreviews());
        } catch (err) {
          fail(err);
          button.disabled = false;
        }
      }
    });

    const hideConnection = () => {
      $("connection-url").value = "";
      $("connection").hidden = true;
    };
    $("hide-connection").addEventListener("click", hideConnection);
    $("copy-connection").addEventListener("click", async () => {
      const input = $("connection-url");
      try {
        await navigator.clipboard.writeText(input.value);
        setStatus($("copy-status"), "Copied to the clipboard.");
      } catch {
        input.focus();
        input.select();
        setStatus($("copy-status"), "Selected: press Ctrl+C (or Cmd+C) to copy.");
      }
    });

    $("preview-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const error = $("preview-error");
      error.hidden = true;
      const name = $("preview-name").value.trim();
      let ttl;
      try {
        if (name && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) {
          throw Object.assign(new Error("The name may use letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit."), { field: "preview-name" });
        }
        ttl = readInt("preview-ttl", "The lifetime", 1, 168);
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
        $(err.field)?.focus();
        return;
      }
      const mode = document.querySelector("input[name=mode]:checked")?.value || "empty";
      const button = e.target.querySelector("button[type=submit]");
      const progress = $("preview-progress");
      button.disabled = true;
      try {
        const { preview, job } = await api("POST", `/v1/projects/${projectId}/preview-databases`, { ...(name ? { name } : {}), mode, ttl_hours: ttl });
        $("preview-name").value = "";
        const jobLink = h("a", { href: `/console/jobs/${job.id}` }, job.id);
        setStatus(progress, `Creating preview ${preview.name}: job `, jobLink, " queued.");
        await refreshPreviews();
        const final = await watchJob(job.id, async (j) => {
          setStatus(progress, `Creating preview ${preview.name}: job `, jobLink, `: ${stop(describeJob(j))}`);
          await refreshPreviews().catch(handleSignedOut);
        });
        if (final && final.state === "completed") setStatus(progress, `Preview ${preview.name} is ready.`);
        pollPreviewsWhileBusy(await refreshPreviews());
      } catch (err) {
        fail(err, error);
      } finally {
        button.disabled = false;
      }
    });

    try {
      pollPreviewsWhileBusy(await refreshPreviews());
    } catch (err) {
      fail(err);
      fillTable(table, [], "The previews could not be loaded.");
    }
  }

  // Restore points -----------------------------------------------------------------------------

  async function refreshRestorePoints() {
    const { restore_points: points } = await api("GET", `/v1/projects/${projectId}/restore-points`);
    fillTable(
      $("restore-points"),
      points.map((p) => ({
        id: p.id,
        signature: p.state,
        cols: ["label", "backup", "state", "created", "actions"],
        cells: [
          h("span", {}, h("strong", {}, p.label), p.note ? h("span", { class: "muted" }, h("br"), p.note) : ""),
          p.backup_id ? h("code", {}, p.backup_id) : "—",
          badge(p.state),
          when(p.created_at),
          p.state === "active"
            ? h(
                "div",
                { class: "actions" },
                h("button", { type: "button", class: "small secondary", "data-action": "restore", "aria-label": `Restore ${p.label} into a new preview` }, "Restore into a preview"),
                h("button", { type: "button", class: "small danger", "data-action": "delete", "aria-label": `Delete restore point ${p.label}` }, "Delete"),
              )
            : "",
        ],
      })),
      "No restore points yet.",
    );
    return points;
  }

  async function restorePointsPage() {
    void showAccount();
    void showProjectName();
    const status = $("point-action-status");
    // The backups a point can pin: the completed ones.
    api("GET", `/v1/projects/${projectId}/backups?limit=100`)
      .then(({ backups }) => {
        const select = $("point-backup");
        for (const b of backups.filter((x) => x.state === "completed")) {
          select.append(h("option", { value: b.backup_key }, `${new Date(b.created_at).toUTCString()} · ${b.label} · ${b.verification_state}`));
        }
      })
      .catch((err) => fail(err));

    $("restore-points").addEventListener("click", async (e) => {
      const button = e.target.closest("button[data-action]");
      const id = button?.closest("tr")?.dataset.id;
      if (!button || !id) return;
      const label = button.closest("tr").querySelector("strong")?.textContent || id;
      if (button.dataset.action === "restore") return void restoreIntoPreview({ restore_point_id: id }, status, button);
      if (!confirm(`Delete restore point ${label}? Its backup is then subject to retention again.`)) return;
      button.disabled = true;
      try {
        await api("DELETE", `/v1/projects/${projectId}/restore-points/${id}`);
        setStatus(status, `Restore point ${label} deleted.`);
        await refreshRestorePoints();
      } catch (err) {
        fail(err);
        button.disabled = false;
      }
    });

    $("restore-point-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const error = $("point-error");
      error.hidden = true;
      const label = $("point-label").value.trim();
      if (!label) {
        error.textContent = "Give the restore point a label.";
        error.hidden = false;
        $("point-label").focus();
        return;
      }
      const backupKey = $("point-backup").value;
      const note = $("point-note").value.trim();
      const button = e.target.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const { restore_point: point } = await api("POST", `/v1/projects/${projectId}/restore-points`, {
          label,
          kind: "backup",
          ...(backupKey ? { backup_key: backupKey } : {}),
          ...(note ? { note } : {}),
        });
        $("point-label").value = "";
        $("point-note").value = "";
        setStatus(status, `Restore point ${point.label} created: backup ${point.backup_id} is kept while it is active.`);
        await refreshRestorePoints();
      } catch (err) {
        fail(err, error);
      } finally {
        button.disabled = false;
      }
    });

    try {
      await refreshRestorePoints();
    } catch (err) {
      fail(err);
      fillTable($("restore-points"), [], "The restore points could not be loaded.");
    }
  }

  // Webhooks -----------------------------------------------------------------------------------

  async function webhooksPage() {
    const me = await showAccount();
    if (!me) return;
    const base = `/v1/organizations/${me.organization_id}/webhook-endpoints`;
    const status = $("endpoint-action-status");
    let shown = null; // the endpoint whose deliveries are listed

    const refreshEndpoints = async () => {
      const { webhook_endpoints: endpoints } = await api("GET", base);
      fillTable(
        $("endpoints"),
        endpoints.map((e) => ({
          id: e.id,
          signature: `${e.health}/${e.is_active}/${e.updated_at}`,
          cols: ["url", "events", "health", "created", "actions"],
          cells: [
            h("span", {}, h("code", {}, e.url), e.description ? h("span", { class: "muted" }, h("br"), e.description) : ""),
            e.event_types.length ? e.event_types.join(", ") : "all",
            badge(e.health),
            when(e.created_at),
            h(
              "div",
              { class: "actions" },
              h("button", { type: "button", class: "small", "data-action": "deliveries", "aria-label": `Deliveries to ${e.url}` }, "Deliveries"),
              h("button", { type: "button", class: "small secondary", "data-action": "test", "aria-label": `Send a test event to ${e.url}` }, "Send test"),
              h("button", { type: "button", class: "small secondary", "data-action": e.is_active ? "disable" : "enable", "aria-label": `${e.is_active ? "Turn off" : "Turn on"} ${e.url}` }, e.is_active ? "Turn off" : "Turn on"),
              h("button", { type: "button", class: "small secondary", "data-action": "rotate", "aria-label": `New signing secret for ${e.url}` }, "New secret"),
              h("button", { type: "button", class: "small danger", "data-action": "delete", "aria-label": `Delete endpoint ${e.url}` }, "Delete"),
            ),
          ],
        })),
        "No endpoints yet.",
      );
      return endpoints;
    };

    const refreshDeliveries = async () => {
      if (!shown) return [];
      const { deliveries } = await api("GET", `${base}/${shown.id}/deliveries?limit=25`);
      fillTable(
        $("deliveries"),
        deliveries.map((d) => ({
          id: d.id,
          signature: `${d.state}/${d.attempts}/${d.response_status}`,
          cols: ["event", "state", "attempts", "response", "created", "actions"],
          cells: [
            h("code", {}, d.event_type),
            h("span", {}, badge(d.state), d.last_error ? h("span", { class: "detail" }, d.last_error) : ""),
            { content: `${d.attempts} of ${d.max_attempts}`, className: "num" },
            d.response_status === null ? "—" : `HTTP ${d.response_status}`,
            when(d.created_at),
            h("button", { type: "button", class: "small secondary", "data-action": "redeliver", "aria-label": `Send delivery ${d.id} again` }, "Send again"),
          ],
        })),
        "No deliveries yet.",
      );
      return deliveries;
    };

    const showDeliveries = async (endpoint) => {
      shown = endpoint;
      $("deliveries-endpoint").textContent = endpoint.url;
      $("deliveries-section").hidden = false;
      let deliveries = await refreshDeliveries();
      // Pending deliveries are retried in the background: follow them for a while.
      for (let i = 0; i < 30 && shown === endpoint && deliveries.some((d) => d.state === "pending"); i++) {
        await sleep(POLL_MS * 2);
        deliveries = await refreshDeliveries();
      }
    };

    $("endpoints").addEventListener("click", async (e) => {
      const button = e.target.closest("button[data-action]");
      const id = button?.closest("tr")?.dataset.id;
      if (!button || !id) return;
      const url = button.closest("tr").querySelector("code")?.textContent || id;
      const action = button.dataset.action;
      if (action === "delete" && !confirm(`Delete the endpoint ${url}? It receives nothing more.`)) return;
      if (action === "rotate" && !confirm(`Make a new signing secret for ${url}? The current one keeps signing beside it for 24 hours.`)) return;
      button.disabled = true;
      try {
        if (action === "deliveries") await showDeliveries({ id, url });
        else if (action === "test") {
          const { delivery } = await api("POST", `${base}/${id}/test`);
          setStatus(status, `Test event sent to ${url}: delivery ${delivery.id} is ${delivery.state}.`);
          await showDeliveries({ id, url });
        } else if (action === "disable" || action === "enable") {
          await api("PATCH", `${base}/${id}`, { is_active: action === "enable" });
          setStatus(status, `${url} is turned ${action === "enable" ? "on" : "off"}.`);
          await refreshEndpoints();
        } else if (action === "rotate") {
          const { webhook_endpoint: endpoint, plaintext_secret: secret } = await api("POST", `${base}/${id}/rotate-secret`);
          setStatus(status, `${url} has a new signing secret; the previous one keeps signing beside it for 24 hours.`);
          showSecret(endpoint, secret);
        } else if (action === "delete") {
          await api("DELETE", `${base}/${id}`);
          setStatus(status, `Endpoint ${url} deleted.`);
          if (shown && shown.id === id) $("deliveries-section").hidden = true;
          await refreshEndpoints();
        }
      } catch (err) {
        fail(err);
      } finally {
        if (button.isConnected) button.disabled = false;
      }
    });

    $("deliveries").addEventListener("click", async (e) => {
      const button = e.target.closest("button[data-action=redeliver]");
      const id = button?.closest("tr")?.dataset.id;
      if (!button || !id || !shown) return;
      button.disabled = true;
      try {
        const { delivery } = await api("POST", `${base}/${shown.id}/deliveries/${id}/redeliver`);
        setStatus(status, `Delivery sent again: ${delivery.id} is ${delivery.state}.`);
        await showDeliveries(shown);
      } catch (err) {
        fail(err);
      } finally {
        if (button.isConnected) button.disabled = false;
      }
    });

    /** The secret the API answered (create, rotate): shown here once, selected for copying. */
    const showSecret = (endpoint, secret) => {
      $("secret-endpoint").textContent = endpoint.url;
      $("secret-value").value = secret;
      setStatus($("secret-status"));
      $("secret").hidden = false;
      $("secret-value").focus();
      $("secret-value").select();
    };

    $("hide-secret").addEventListener("click", () => {
      $("secret-value").value = "";
      $("secret").hidden = true;
    });
    $("copy-secret").addEventListener("click", async () => {
      const input = $("secret-value");
      try {
        await navigator.clipboard.writeText(input.value);
        setStatus($("secret-status"), "Copied to the clipboard.");
      } catch {
        input.focus();
        input.select();
        setStatus($("secret-status"), "Selected: press Ctrl+C (or Cmd+C) to copy.");
      }
    });

    $("endpoint-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const error = $("endpoint-error");
      error.hidden = true;
      const url = $("endpoint-url").value.trim();
      if (!/^https?:\/\/\S+$/.test(url)) {
        error.textContent = "Give the endpoint's full URL, like https://example.com/hooks/capydb.";
        error.hidden = false;
        $("endpoint-url").focus();
        return;
      }
      const description = $("endpoint-description").value.trim();
      const eventTypes = [...document.querySelectorAll("input[name=event_types]:checked")].map((i) => i.value);
      const button = e.target.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const { webhook_endpoint: endpoint, plaintext_secret: secret } = await api("POST", base, { url, event_types: eventTypes, ...(description ? { description } : {}) });
        e.target.reset();
        showSecret(endpoint, secret);
        await refreshEndpoints();
      } catch (err) {
        fail(err, error);
      } finally {
        button.disabled = false;
      }
    });

    try {
      await refreshEndpoints();
    } catch (err) {
      fail(err);
      fillTable($("endpoints"), [], "The endpoints could not be loaded.");
    }
  }

  // ---- CLI login approval -------------------------------------------------------------------

  async function cliLoginPage() {
    await showAccount();
    const id = document.body.dataset.sessionId;
    const status = $("cli-login-status");
    const approve = $("cli-login-approve");
    const deny = $("cli-login-deny");
    const settled = {
      completed: "This login is already complete: the device has its key.",
      denied: "This login was denied: the device got no key.",
      expired: "This login expired: run `capydb login` again on the device.",
    };
    let login;
    try {
      ({ login } = await api("GET", `/v1/cli/login/sessions/${id}/approval`));
    } catch (err) {
      if (handleSignedOut(err)) return;
      status.textContent = err.status === 404 ? "There is no such login: run `capydb login` again and open the link it prints." : err.message;
      return;
    }
    $("cli-login-device").textContent = `${login.device_name} (${login.source === "agent" ? "an agent" : "the CapyDB CLI"})`;
    $("cli-login-requested").textContent = login.requested_scopes.join(", ");
    $("cli-login-granted").textContent = login.granted_scopes.length
      ? `${login.granted_scopes.join(", ")}${login.project_id ? ` (project ${login.project_id} only)` : ""}`
      : "nothing: you hold none of these scopes";
    $("cli-login-expires").replaceChildren(when(login.expires_at));
    if (login.state !== "pending") {
      status.textContent = login.state === "pending" ? "" : settled[login.state] || login.state;
      return;
    }
    approve.disabled = login.granted_scopes.length === 0;
    deny.disabled = false;
    const decide = async (verb) => {
      approve.disabled = true;
      deny.disabled = true;
      status.textContent = verb === "approve" ? "Approving…" : "Denying…";
      try {
        await api("POST", `/v1/cli/login/sessions/${id}/${verb}`);
        status.textContent =
          verb === "approve" ? `Approved. ${login.device_name} is signed in; you can close this tab.` : `Denied. ${login.device_name} got no key.`;
      } catch (err) {
        if (handleSignedOut(err)) return;
        status.textContent = err.message;
      }
    };
    approve.addEventListener("click", () => void decide("approve"));
    deny.addEventListener("click", () => void decide("deny"));
  }

  // ---- start --------------------------------------------------------------------------------

  const pages = {
    "sign-in": signInPage,
    projects: projectsPage,
    backups: backupsPage,
    schedule: schedulePage,
    jobs: jobsPage,
    job: jobPage,
    previews: previewsPage,
    "restore-points": restorePointsPage,
    webhooks: webhooksPage,
    "cli-login": cliLoginPage,
  };

  function start() {
    openProjectForm();
    tickTimes();
    if (page !== "sign-in" && page !== "not-found" && !session.get(STORE.credential)) {
      signOut("Sign in to continue.");
      return;
    }
    if (page === "not-found") {
      if (session.get(STORE.credential)) void showAccount();
      return;
    }
    const run = pages[page];
    if (run) void run().catch((err) => fail(err));
  }

  start();
})();
