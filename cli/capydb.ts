/**
 * capydb: the customers' CLI for CapyDB backups. It talks to the public API only (never to the
 * store), with a client typed and validated by the API's own route schemas.
 *
 *   capydb backups create --wait --require-verified     # CI: snapshot before a risky migration
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { rmSync } from "node:fs";
import { hostname } from "node:os";
import { basename } from "node:path";
import { credentialsPath, removeLogin, writeLogin } from "./capydb/credentials.ts";
import { ZodError } from "zod";
import { ApiClient, ApiError, cliVersion, type Download, type Job } from "./capydb/client.ts";
import { downloadTarget, downloadToFile } from "./capydb/download.ts";
import { CliError, exitCodes } from "./capydb/errors.ts";
import { exitWhenFlushed } from "./exit.ts";
import {
  auditTable,
  backupFields,
  backupsTable,
  downloadedFields,
  exportFields,
  exportsTable,
  formatBytes,
  jobFields,
  jobsTable,
  meFields,
  printJson,
  scheduleFields,
  type Format,
  type Io,
} from "./capydb/output.ts";
import { requireApiKey, requireApiUrl, requireProject, resolveSettings, sourceName, type GlobalFlags, type Settings } from "./capydb/settings.ts";
import { registerPitrCommand } from "./capydb/pitr-command.ts";
import { registerRestoreCommands } from "./capydb/restore-commands.ts";
import { registerWebhooks } from "./capydb/webhooks.ts";
import { Progress, findJobBackup, parseDuration, waitForJob, waitForJobBackup, type WaitOptions } from "./capydb/wait.ts";
import { CreateBackupRequest } from "../core/contract/backups.ts";
import { PutScheduledBackupRequest } from "../core/contract/scheduled-backups.ts";

interface Globals extends GlobalFlags {
  output?: string;
}

const io: Io = { out: process.stdout, err: process.stderr };
let settings: Settings | undefined;

const formats: readonly string[] = ["table", "json"];

/**
 * Parsed once per run, on first use, so `--help` works without any configuration. On the download
 * commands `-o` names the file to write (as with curl), so it is not read as a format there.
 */
function context(cmd: Command, opts: { outputIsFile?: boolean } = {}) {
  const g = cmd.optsWithGlobals<Globals>();
  if (!opts.outputIsFile && g.output !== undefined && !formats.includes(g.output)) {
    throw new CliError(`option '-o, --output <format>' argument '${g.output}' is invalid. Allowed choices are table, json.`, exitCodes.usage);
  }
  settings = resolveSettings(g);
  const format = ((!opts.outputIsFile && g.output) || (process.stdout.isTTY ? "table" : "json")) as Format;
  const client = new ApiClient({ baseUrl: requireApiUrl(settings), apiKey: requireApiKey(settings) });
  return { settings, format, client, project: () => requireProject(settings!) };
}

const int = (name: string, min: number, max: number) => (value: string) => {
  if (!/^\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
    throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
};

/** Progress goes to stderr, and only on a terminal: piped, `--wait` prints nothing but the result. */
const progressOn = () => (process.stderr.isTTY ? new Progress(process.stderr).start() : undefined);
const note = (text: string) => io.err.write(text + "\n");

/** Stops waiting on Ctrl-C without pretending the job stopped: it runs on the server. */
function onInterrupt(jobId: string, progress: Progress | undefined): () => void {
  const handler = () => {
    progress?.stop();
    note(`stopped waiting; job ${jobId} goes on on the server: follow it with \`capydb jobs get ${jobId} --wait\``);
    process.exit(130);
  };
  process.once("SIGINT", handler);
  return () => process.off("SIGINT", handler);
}

function waitOptions(timeout: string, progress: Progress | undefined): WaitOptions {
  return { deadline: Date.now() + parseDuration(timeout), timeoutText: timeout, progress };
}

/**
 * `--wait` on a job: runs `wait` with a progress line (a terminal only) and Ctrl-C handling. On an
 * error the progress line is cleared; otherwise the caller closes it with its own summary.
 */
async function following<T>(jobId: string, timeout: string, wait: (opts: WaitOptions) => Promise<T>): Promise<{ result: T; progress: Progress | undefined }> {
  const progress = progressOn();
  const release = onInterrupt(jobId, progress);
  try {
    return { result: await wait(waitOptions(timeout, progress)), progress };
  } catch (err) {
    progress?.stop();
    throw err;
  } finally {
    release();
  }
}

/** Closes the progress line with the job's outcome. */
const jobDone = (progress: Progress | undefined, job: Job) =>
  progress?.stop(`${job.state === "completed" ? "✓" : "✗"} job ${job.id} ${job.state} · ${progress.elapsed()}`);

const program = new Command("capydb")
  .description("CapyDB backups from the terminal and from CI: take, wait for, list and schedule verified backups")
  .version(cliVersion, "-V, --version")
  .option("--api-url <url>", "the API's base URL (env CAPYDB_API_URL; else .capydb/local.json)")
  .option("--api-key <key>", "an API key, capy_live_... (env CAPYDB_API_KEY, which keeps it out of shell history and ps)")
  .option("--project <id>", "the project to act on (env CAPYDB_PROJECT; else .capydb/local.json)")
  .addOption(
    new Option(
      "-o, --output <format>",
      "table or json (json is the API's body, unchanged); default: table on a terminal, json when piped. On `download`: the file to write",
    ),
  )
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride()
  .addHelpText(
    "after",
    `
Exit codes: 0 ok, 1 error, 2 usage or validation, 3 authentication or permission,
            4 not found, 5 conflict, 6 --wait-timeout reached.

Examples:
  capydb backups create --label pre-migration --wait --require-verified
  capydb backups list -o json | jq '.backups[0]'
  capydb backups schedule set --hour 2 --minute 15 --retention-days 30
  capydb jobs get job_01... --wait`,
  );

const backups = program.command("backups").description("on-demand backups and the daily schedule");

backups
  .command("list")
  .description("list the project's backups, newest first")
  .option("--limit <n>", "at most this many (1-1000)", int("--limit", 1, 1000))
  .option("--cursor <cursor>", "the next page, from a previous list")
  .action(async (o: { limit?: number; cursor?: string }, cmd: Command) => {
    const { client, format, project } = context(cmd);
    const res = await client.listBackups(project(), { limit: o.limit, cursor: o.cursor });
    if (format === "json") return printJson(io, res.body);
    if (!res.data.backups.length) note("No backups yet. Take one with `capydb backups create --wait`.");
    else io.out.write(backupsTable(res.data.backups));
    if (res.nextCursor) note(`More backups: --cursor ${res.nextCursor}`);
  });

backups
  .command("create")
  .description("take a backup now; with --wait, until it is dumped, restored and verified")
  .option("--label <label>", "a label to recognise it by (default: manual)")
  .option("--retention-days <n>", "keep it this many days (1-365; default: the schedule's, else 14)", int("--retention-days", 1, 365))
  .option("--wait", "wait until the backup completes or fails")
  .option("--wait-timeout <duration>", "give up waiting after this long (exit 6), like 90s, 30m, 1h", "30m")
  .option("--require-verified", "exit 1 unless the backup completes verified (implies --wait)")
  .option("--idempotency-key <key>", "re-running with the same key within 24 h answers the same job instead of starting another")
  .action(
    async (
      o: { label?: string; retentionDays?: number; wait?: boolean; waitTimeout: string; requireVerified?: boolean; idempotencyKey?: string },
      cmd: Command,
    ) => {
      const { client, format, project } = context(cmd);
      const projectId = project();
      const wait = Boolean(o.wait || o.requireVerified || cmd.getOptionValueSource("waitTimeout") === "cli");
      const deadlineText = o.waitTimeout;
      if (wait) parseDuration(deadlineText); // a bad duration is a usage error before anything is created
      const body = CreateBackupRequest.parse({ label: o.label, retention_days: o.retentionDays });
      const created = await client.createBackup(projectId, body, { idempotencyKey: o.idempotencyKey });
      const job = created.data.job;
      if (!wait) {
        if (format === "json") return printJson(io, created.body);
        io.out.write(jobFields(job));
        note(`Backup requested. Follow it with \`capydb jobs get ${job.id} --wait\`.`);
        return;
      }

      const {
        result: { finished, result },
        progress,
      } = await following(job.id, deadlineText, async (opts) => {
        opts.progress?.update(`job ${job.id}: requested`);
        const finished = await waitForJob(client, job.id, opts, async (j) => (await findJobBackup(client, projectId, j))?.backup);
        return { finished, result: await waitForJobBackup(client, projectId, finished.job, opts) };
      });
      const { backup } = result;
      const verified = backup.state === "completed" && backup.verification_state === "verified";
      progress?.stop(
        verified
          ? `✓ backup ${backup.id} completed and verified · ${formatBytes(backup.size_bytes)} · ${progress.elapsed()}`
          : `✗ backup ${backup.id} ${backup.state} (verification ${backup.verification_state}) · ${progress.elapsed()}`,
      );
      if (format === "json") printJson(io, result.body);
      else io.out.write(backupFields(backup));
      if (finished.job.state === "failed" || backup.state === "failed") {
        throw new CliError(`backup failed: ${finished.job.error ?? backup.verification_error ?? "no reason given"} (job ${finished.job.id})`);
      }
      if (!verified) {
        const why = `backup ${backup.id} is ${backup.state} but not verified (verification ${backup.verification_state})`;
        if (o.requireVerified) throw new CliError(`${why}${finished.job.error ? `: ${finished.job.error}` : ""}`);
        note(`warning: ${why}`);
      }
    },
  );

backups
  .command("download <backup-id>")
  .description("download a completed backup's pg_dump archive; kept only if its size and SHA-256 match")
  .usage("<backup-id> [-o FILE]")
  .addHelpText("after", "\n  -o FILE   where to write it (default: <backup-id>.dump here; a directory: <backup-id>.dump in it)")
  .action(async (backupId: string, _o: unknown, cmd: Command) => {
    const { client, format, project } = context(cmd, { outputIsFile: true });
    const res = await client.backupDownload(project(), backupId);
    await saveDownload(res.data.download, backupId, cmd.optsWithGlobals<Globals>().output, format);
  });

const schedule = backups.command("schedule").description("the project's daily backup schedule (one per project, UTC)");

async function currentSchedule(cmd: Command) {
  const ctx = context(cmd);
  const projectId = ctx.project();
  const res = await ctx.client.listSchedules(projectId);
  const raw = (res.body as { scheduled_backups: unknown[] }).scheduled_backups;
  const current = res.data.scheduled_backups[0];
  return { ...ctx, projectId, res, current, currentBody: raw[0] };
}

schedule
  .command("get")
  .description("show the schedule")
  .action(async (_o: unknown, cmd: Command) => {
    const { format, res, current, projectId } = await currentSchedule(cmd);
    if (format === "json") return printJson(io, res.body);
    if (!current) note(`Project ${projectId} has no backup schedule. Set one with \`capydb backups schedule set --hour H --minute M\`.`);
    else io.out.write(scheduleFields(current));
  });

schedule
  .command("set")
  .description("back up daily at HH:MM UTC, and enable the schedule; options not given keep their current values")
  .requiredOption("--hour <h>", "hour of the day, UTC (0-23)", int("--hour", 0, 23))
  .requiredOption("--minute <m>", "minute (0-59)", int("--minute", 0, 59))
  .option("--retention-days <n>", "keep scheduled backups this many days (1-365; default 14)", int("--retention-days", 1, 365))
  .option("--label <label>", "label of the scheduled backups (default: default)")
  .action(async (o: { hour: number; minute: number; retentionDays?: number; label?: string }, cmd: Command) => {
    const { client, format, projectId, current } = await currentSchedule(cmd);
    // The API's PUT replaces the whole schedule; keeping what was not given avoids silently
    // resetting the retention to the default when only the time changes.
    const body = PutScheduledBackupRequest.parse({
      cron_hour: o.hour,
      cron_minute: o.minute,
      is_active: true,
      label: o.label ?? current?.label,
      retention_days: o.retentionDays ?? current?.retention_days,
    });
    const res = await client.putSchedule(projectId, body);
    if (format === "json") return printJson(io, res.body);
    io.out.write(scheduleFields(res.data.scheduled_backup));
  });

schedule
  .command("disable")
  .description("stop the daily backups, keeping the time, retention and label for a later `set`")
  .action(async (_o: unknown, cmd: Command) => {
    const { client, format, projectId, current, currentBody } = await currentSchedule(cmd);
    if (!current) {
      throw new CliError(`project ${projectId} has no backup schedule, so there is nothing to disable`, exitCodes.notFound);
    }
    if (!current.is_active) {
      note("The schedule was already disabled.");
      if (format === "json") return printJson(io, { scheduled_backup: currentBody });
      return void io.out.write(scheduleFields(current));
    }
    const res = await client.putSchedule(projectId, {
      cron_hour: current.cron_hour,
      cron_minute: current.cron_minute,
      is_active: false,
      label: current.label,
      retention_days: current.retention_days,
    });
    if (format === "json") return printJson(io, res.body);
    io.out.write(scheduleFields(res.data.scheduled_backup));
  });

/**
 * Streams a signed download to `output` (see download.ts: temporary file beside it, size and
 * SHA-256 checked, renamed into place only then). Ctrl-C or SIGTERM removes the partial file.
 */
async function saveDownload(info: Download, id: string, output: string | undefined, format: Format): Promise<void> {
  const target = await downloadTarget(output, id);
  const progress = progressOn();
  let temp: string | undefined;
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    // Synchronously, before exiting: nothing partial may survive the interrupt.
    if (temp) rmSync(temp, { force: true });
    progress?.stop();
    note(`download interrupted; nothing was written to ${target}`);
    abort.abort();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    progress?.update(`downloading ${basename(target)}: 0 of ${formatBytes(info.size_bytes)}`);
    const done = await downloadToFile(info, target, {
      signal: abort.signal,
      onTempFile: (path) => void (temp = path),
      onProgress: (received, total) =>
        progress?.update(
          `downloading ${basename(target)}: ${formatBytes(received)} of ${formatBytes(total)} (${total ? Math.floor((received / total) * 100) : 100}%)`,
        ),
    });
    progress?.stop(`✓ ${basename(target)}: ${formatBytes(done.size_bytes)}, SHA-256 checked · ${progress.elapsed()}`);
    if (format === "json") printJson(io, done);
    else io.out.write(downloadedFields(done));
  } catch (err) {
    progress?.stop();
    throw err;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

const exportsCmd = program.command("exports").description("exports: a pg_dump of the project's database to download (kept 7 days)");

exportsCmd
  .command("create")
  .description("export the database now; with --wait, until the export is ready to download")
  .option("--wait", "wait until the export completes or fails")
  .option("--wait-timeout <duration>", "give up waiting after this long (exit 6), like 90s, 30m, 1h", "30m")
  .action(async (o: { wait?: boolean; waitTimeout: string }, cmd: Command) => {
    const { client, format, project } = context(cmd);
    const projectId = project();
    const wait = Boolean(o.wait || cmd.getOptionValueSource("waitTimeout") === "cli");
    if (wait) parseDuration(o.waitTimeout); // a bad duration is a usage error before anything is created
    const created = await client.createExport(projectId);
    const { export_id: exportId, job } = created.data;
    if (!wait) {
      if (format === "json") return printJson(io, created.body);
      io.out.write(jobFields(job));
      note(`Export ${exportId} requested. Wait for it with \`capydb jobs get ${job.id} --wait\`, then \`capydb exports download ${exportId}\`.`);
      return;
    }
    const { result: finished, progress } = await following(job.id, o.waitTimeout, (opts) => {
      opts.progress?.update(`job ${job.id}: requested`);
      return waitForJob(client, job.id, opts);
    });
    const found = await findExport(client, projectId, exportId);
    const exp = found?.exp;
    progress?.stop(
      exp?.state === "completed"
        ? `✓ export ${exportId} completed · ${formatBytes(exp.size_bytes)} · ${progress.elapsed()}`
        : `✗ export ${exportId} ${exp?.state ?? finished.job.state} · ${progress.elapsed()}`,
    );
    if (format === "json") printJson(io, found ? { export: found.body } : { export_id: exportId, job: finished.job });
    else if (exp) io.out.write(exportFields(exp));
    if (finished.job.state === "failed") throw new CliError(`export failed: ${finished.job.error ?? "no reason given"} (job ${finished.job.id})`);
    if (format !== "json") note(`Download it with \`capydb exports download ${exportId}\`.`);
  });

/** An export by id, from the list (newest first; an export being waited on is among the newest). */
async function findExport(client: ApiClient, projectId: string, exportId: string) {
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const res = await client.listExports(projectId, { limit: 100, cursor });
    const i = res.data.exports.findIndex((e) => e.id === exportId);
    if (i >= 0) return { exp: res.data.exports[i]!, body: (res.body as { exports: unknown[] }).exports[i] };
    if (!res.nextCursor) return undefined;
    cursor = res.nextCursor;
  }
  return undefined;
}

exportsCmd
  .command("list")
  .description("list the project's exports, newest first (expired ones stay listed)")
  .option("--limit <n>", "at most this many (1-1000)", int("--limit", 1, 1000))
  .option("--cursor <cursor>", "the next page, from a previous list")
  .action(async (o: { limit?: number; cursor?: string }, cmd: Command) => {
    const { client, format, project } = context(cmd);
    const res = await client.listExports(project(), { limit: o.limit, cursor: o.cursor });
    if (format === "json") return printJson(io, res.body);
    if (!res.data.exports.length) note("No exports yet. Make one with `capydb exports create --wait`.");
    else io.out.write(exportsTable(res.data.exports));
    if (res.nextCursor) note(`More exports: --cursor ${res.nextCursor}`);
  });

exportsCmd
  .command("download <export-id>")
  .description("download a completed export's pg_dump archive; kept only if its size and SHA-256 match")
  .usage("<export-id> [-o FILE]")
  .addHelpText("after", "\n  -o FILE   where to write it (default: <export-id>.dump here; a directory: <export-id>.dump in it)")
  .action(async (exportId: string, _o: unknown, cmd: Command) => {
    const { client, format, project } = context(cmd, { outputIsFile: true });
    const res = await client.exportDownload(project(), exportId);
    await saveDownload(res.data.download, exportId, cmd.optsWithGlobals<Globals>().output, format);
  });

const jobs = program.command("jobs").description("the jobs that make and expire backups");

jobs
  .command("list")
  .description("list the project's jobs, newest first")
  .option("--limit <n>", "at most this many (1-100, default 25)", int("--limit", 1, 100))
  .option("--cursor <cursor>", "the next page, from a previous list")
  .action(async (o: { limit?: number; cursor?: string }, cmd: Command) => {
    const { client, format, project } = context(cmd);
    const res = await client.listJobs(project(), { limit: o.limit, cursor: o.cursor });
    if (format === "json") return printJson(io, res.body);
    if (!res.data.jobs.length) note("No jobs yet.");
    else io.out.write(jobsTable(res.data.jobs));
    if (res.nextCursor) note(`More jobs: --cursor ${res.nextCursor}`);
  });

jobs
  .command("get <job-id>")
  .description("show a job; with --wait, until it completes or fails (exit 1 if it fails)")
  .option("--wait", "wait until the job completes or fails")
  .option("--wait-timeout <duration>", "give up waiting after this long (exit 6), like 90s, 30m, 1h", "30m")
  .action(async (jobId: string, o: { wait?: boolean; waitTimeout: string }, cmd: Command) => {
    const { client, format } = context(cmd);
    const wait = Boolean(o.wait || cmd.getOptionValueSource("waitTimeout") === "cli");
    if (!wait) {
      const res = await client.getJob(jobId);
      if (format === "json") return printJson(io, res.body);
      return void io.out.write(jobFields(res.data.job));
    }
    const { result: done, progress } = await following(jobId, o.waitTimeout, (opts) => waitForJob(client, jobId, opts));
    jobDone(progress, done.job);
    if (format === "json") printJson(io, done.body);
    else io.out.write(jobFields(done.job));
    if (done.job.state === "failed") throw new CliError(`job ${jobId} failed: ${done.job.error ?? "no reason given"}`);
  });

program
  .command("audit")
  .description("the audit trail: who changed what, and when")
  .command("list")
  .description("the project's audit events, newest first (--org: the whole organization's, with an organization key)")
  .option("--org", "the organization's events (its projects' and its own: API keys, webhooks) instead of the project's")
  .option("--limit <n>", "at most this many (1-100, default 25)", int("--limit", 1, 100))
  .option("--cursor <cursor>", "the next page, from a previous list")
  .action(async (o: { org?: boolean; limit?: number; cursor?: string }, cmd: Command) => {
    const { client, format, project } = context(cmd);
    const q = { limit: o.limit, cursor: o.cursor };
    // The organization is the key's own: asked of the API rather than configured.
    const res = o.org
      ? await client.listOrganizationAuditEvents((await client.me()).data.principal.organization_id, q)
      : await client.listProjectAuditEvents(project(), q);
    if (format === "json") return printJson(io, res.body);
    if (!res.data.audit_events.length) note("No audit events yet.");
    else io.out.write(auditTable(res.data.audit_events, Boolean(o.org)));
    if (res.nextCursor) note(`More events: --cursor ${res.nextCursor}`);
  });

program
  .command("whoami")
  .description("show who the API key is: organization, project, scopes")
  .action(async (_o: unknown, cmd: Command) => {
    const { client, format, settings: s } = context(cmd);
    const res = await client.me();
    if (format === "json") return printJson(io, res.body);
    io.out.write(meFields(res.data, s.apiUrl?.value ?? ""));
  });

program
  .command("login")
  .description("sign this device in: approve it in the console (opened at the printed link), and the CLI keeps a new API key of its own")
  .option("--device-name <name>", "how the device shows in the console and as the key's name (default: this machine's host name)")
  .option("--timeout <duration>", "give up after this long (e.g. 10m)", "10m")
  .action(async (o: { deviceName?: string; timeout: string }, cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    const s = resolveSettings({ ...g, apiKey: undefined });
    const apiUrl = requireApiUrl(s);
    const client = new ApiClient({ baseUrl: apiUrl, apiKey: "" });
    const deviceName = (o.deviceName ?? `capydb CLI on ${hostname()}`).slice(0, 100);
    const started = await client.startLogin({ device_name: deviceName, source: "cli" });
    const login = started.data;
    note(`Open this link, sign in and approve "${deviceName}":\n\n  ${login.verification_url}\n`);
    note(`Waiting for the approval (until ${login.expires_at})...`);
    const deadline = Date.now() + Math.min(parseDuration(o.timeout), Date.parse(login.expires_at) - Date.now() + 5_000);
    for (;;) {
      await new Promise((r) => setTimeout(r, 2_000));
      const poll = (await client.pollLogin(login.session_id, login.poll_token)).data;
      if (poll.state === "completed") {
        if (!poll.plaintext_api_key) throw new CliError("the login completed, but its key went to another poll: run `capydb login` again", exitCodes.auth);
        const path = writeLogin({
          api_url: apiUrl,
          api_key: poll.plaintext_api_key,
          session_id: login.session_id,
          device_name: deviceName,
          created_at: new Date().toISOString(),
        });
        const me = (await new ApiClient({ baseUrl: apiUrl, apiKey: poll.plaintext_api_key }).me()).data;
        if (g.output === "json")
          return printJson(io, { logged_in: true, api_url: apiUrl, credentials_path: path, organization: me.organization, principal: me.principal });
        io.out.write(meFields(me, apiUrl));
        note(`Signed in. The key is kept in ${path} (readable by you only); CAPYDB_API_KEY and --api-key still take precedence.`);
        if (process.env.CAPYDB_API_KEY) note("Note: CAPYDB_API_KEY is set in this shell, so it (not the new key) is used until you unset it.");
        return;
      }
      if (poll.state === "denied") throw new CliError("the login was denied in the console: no key was made", exitCodes.auth);
      if (poll.state === "expired") throw new CliError("the login expired before it was approved: run `capydb login` again", exitCodes.auth);
      if (Date.now() > deadline) throw new CliError(`no approval within ${o.timeout}: run \`capydb login\` again`, exitCodes.error);
    }
  });

program
  .command("logout")
  .description("forget the key `capydb login` stored on this device (revoke it in the console or with the API to end it everywhere)")
  .action(async () => {
    const had = removeLogin();
    note(had ? `Signed out: removed ${credentialsPath()}.` : "Not signed in with `capydb login` on this device: nothing to remove.");
    if (process.env.CAPYDB_API_KEY) note("CAPYDB_API_KEY is still set in this shell and is still used.");
  });

registerRestoreCommands(program, { io, note, int, context, following, jobDone });

registerPitrCommand(program, { io, note, int, context, following, jobDone });

registerWebhooks(program, { io, note, int, context, following, jobDone });

/** One sentence that says what to do next, under the API's own message. */
function hintFor(err: ApiError): string | undefined {
  const s = settings;
  const key = s?.apiKey ? sourceName("apiKey", s.apiKey) : "the API key";
  if (err.status === 401) return `the API rejected the key from ${key}: check it, and that it is not expired or revoked`;
  if (err.status === 403) return `the key from ${key} lacks a scope this command needs: use a key that has it`;
  const listCmd = /\/exports\//.test(err.path) ? "capydb exports list" : "capydb backups list";
  if (err.status === 404 && err.path.endsWith("/download"))
    return `check the id with \`${listCmd}\`, and the project${s?.project ? ` (from ${sourceName("project", s.project)})` : ""}`;
  if (err.status === 409 && err.path.endsWith("/download")) return `see its state with \`${listCmd}\``;
  if (err.status === 404 && err.path.startsWith("/v1/projects/")) {
    return `check the project id${s?.project ? ` (from ${sourceName("project", s.project)})` : ""}, and that the key may see it`;
  }
  if (err.status === 404 && err.path.includes("/webhook-endpoints"))
    return "check the id with `capydb webhooks list` (and --org, if given: only the key's own organization is visible)";
  if (err.status === 404 && err.path === "/v1/me") return "this API server has no who-am-I endpoint yet (an older version)";
  if (err.status === 503) {
    const wait = err.retryAfter ? ` in ${err.retryAfter}s` : " shortly";
    return err.method === "GET" ? `the service is briefly unavailable: try again${wait}` : `nothing was done: try again${wait}`;
  }
  if (err.status >= 500)
    return err.method === "GET" ? "the service failed; try again later" : "the service failed; check `capydb jobs list` before trying again";
  return undefined;
}

async function fail(err: unknown): Promise<never> {
  let code: number = exitCodes.error;
  let message: string;
  if (err instanceof ApiError) {
    code = err.exitCode;
    const hint = hintFor(err);
    message = `${err.apiMessage} (HTTP ${err.status})${hint ? `\n  ${hint}` : ""}`;
  } else if (err instanceof CliError) {
    code = err.exitCode;
    message = err.message;
  } else if (err instanceof ZodError) {
    code = exitCodes.usage;
    message = err.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`).join("; ");
  } else {
    message = err instanceof Error ? err.message : String(err);
  }
  process.stderr.write(`capydb: ${message}\n`);
  return exitWhenFlushed(code);
}

try {
  await program.parseAsync(process.argv);
  await exitWhenFlushed(exitCodes.ok);
} catch (err) {
  if (err instanceof CommanderError) await exitWhenFlushed(err.exitCode === 0 ? exitCodes.ok : exitCodes.usage);
  await fail(err);
}
