import { spawn } from "node:child_process";
import { Option, type Command } from "commander";
import type { ApiClient, Job, Preview, Project, RestorePoint } from "./client.ts";
import { CliError, exitCodes } from "./errors.ts";
import { formatTime, printJson, renderFields, renderTable, type Format, type Io } from "./output.ts";
import { waitForJob, type Progress, type WaitOptions } from "./wait.ts";

/** What the main program lends to these commands (its settings, output and waiting). */
export interface CommandKit {
  io: Io;
  note(text: string): void;
  int(name: string, min: number, max: number): (value: string) => number;
  context(cmd: Command): { format: Format; client: ApiClient; project: () => string };
  /** `--wait` on a job, with a progress line and Ctrl-C handling (see capydb.ts). */
  following<T>(jobId: string, timeout: string, wait: (opts: WaitOptions) => Promise<T>): Promise<{ result: T; progress: Progress | undefined }>;
  /** Closes the progress line with the job's outcome. */
  jobDone(progress: Progress | undefined, job: Job): void;
}

const projectFields = (p: Project) =>
  renderFields([
    ["id", p.id],
    ["name", p.name],
    ["slug", p.slug],
    ["environment", p.environment],
    ["database", p.database_name],
    ["postgres", p.postgres_version ?? "-"],
    ["state", p.state],
    ["region", p.region ?? "-"],
    ["plan", p.plan],
    ["host", p.public_host ? `${p.public_host}:${p.direct_port}` : "-"],
    ["role", p.role_name ?? "-"],
    ["latest job", p.latest_job_id ?? "-"],
    ["created", formatTime(p.created_at)],
  ]);

/** Where a preview's data came from: empty, a backup's key, or a point in time. */
const previewSource = (p: Preview) =>
  p.source_kind === "backup"
    ? (p.source_backup_key ?? "backup")
    : p.source_kind === "pitr"
      ? `pitr ${p.source_restore_time ? formatTime(p.source_restore_time) : ""}`.trim()
      : "empty";

const previewFields = (p: Preview) =>
  renderFields([
    ["id", p.id],
    ["name", p.name],
    ["mode", p.mode],
    ["state", p.state],
    ["database", p.database_name],
    ["source", previewSource(p)],
    ["expires", formatTime(p.ttl_expires_at)],
    ...(p.last_error ? ([["error", p.last_error]] as [string, string][]) : []),
  ]);

const previewsTable = (ps: Preview[]) =>
  renderTable(
    ["ID", "NAME", "MODE", "STATE", "EXPIRES", "SOURCE"],
    ps.map((p) => [p.id, p.name, p.mode, p.state, formatTime(p.ttl_expires_at), previewSource(p)]),
  );

const pointsTable = (ps: RestorePoint[]) =>
  renderTable(
    ["ID", "LABEL", "KIND", "STATE", "BACKUP OR TIME", "CREATED"],
    ps.map((p) => [p.id, p.label, p.kind, p.state, p.kind === "pitr" ? (p.pitr_time ?? "-") : (p.backup_id ?? "-"), formatTime(p.created_at)]),
  );

/**
 * A point in time as the API wants it: RFC 3339 as given, or relative to now (`-15m`, `-2h`,
 * `-1d`, `-90s`: "fifteen minutes ago"), resolved here so the request says which moment it meant.
 */
export function parsePointInTime(text: string, option: string, now = new Date()): string {
  const rel = /^-(\d+)(s|m|h|d)$/.exec(text.trim());
  if (rel) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as "s" | "m" | "h" | "d"];
    return new Date(now.getTime() - Number(rel[1]) * unit).toISOString();
  }
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(text.trim()) && !Number.isNaN(Date.parse(text))) return text.trim();
  throw new CliError(`${option} must be an RFC 3339 time (2026-12-06T14:31:00Z) or a time ago (-15m, -2h, -1d), got ${JSON.stringify(text)}`, exitCodes.usage);
}

/** `capydb projects`, `restore`, `previews`, `restore-points`: the restore half of the API. */
export function registerRestoreCommands(program: Command, kit: CommandKit): void {
  const { io, note } = kit;

  /** Waits for a preview job, then shows the preview (and how to connect when it is ready). */
  async function finish(cmd: Command, client: ApiClient, format: Format, job: Job, wait: boolean, timeout: string, extra: Record<string, unknown> = {}) {
    const previewId = job.preview_database_id;
    if (!wait) {
      if (format === "json") return printJson(io, { job, ...extra });
      io.out.write(
        renderFields([
          ["job", job.id],
          ["type", job.type],
          ["state", job.state],
          ["preview", previewId ?? "-"],
        ]),
      );
      note(`Follow it with \`capydb jobs get ${job.id} --wait\`${previewId ? `, then \`capydb previews connect ${previewId}\`` : ""}.`);
      return;
    }
    const { result: done, progress } = await kit.following(job.id, timeout, (opts) => waitForJob(client, job.id, opts));
    kit.jobDone(progress, done.job);
    const preview = previewId ? (await client.getPreview(previewId)).data.preview : undefined;
    if (format === "json") printJson(io, { job: done.job, ...(preview ? { preview } : {}), ...extra });
    else if (preview) io.out.write(previewFields(preview));
    if (done.job.state === "failed") throw new CliError(`job ${job.id} failed: ${done.job.error ?? "no reason given"}`);
    if (preview?.state === "ready" && format !== "json") note(`Connect with \`capydb previews connect ${preview.id} --psql\` (or without --psql for the URL).`);
    void cmd;
  }

  /**
   * Follows a promote or an overwrite restore: with --wait, the current phase is shown on the
   * progress line (a terminal only); at the end, the job and every phase it went through.
   */
  async function finishCutover(client: ApiClient, format: Format, job: Job, wait: boolean, timeout: string, extra: Record<string, unknown> = {}) {
    if (!wait) {
      if (format === "json") return printJson(io, { job, ...extra });
      io.out.write(
        renderFields([
          ["job", job.id],
          ["type", job.type],
          ["state", job.state],
        ]),
      );
      note(`Follow it with \`capydb jobs get ${job.id} --wait\`: a safety backup of the project's database comes first, then the swap.`);
      return;
    }
    const { result: done, progress } = await kit.following(job.id, timeout, (opts) => waitForJob(client, job.id, opts));
    kit.jobDone(progress, done.job);
    if (format === "json") printJson(io, { job: done.job, ...extra });
    else {
      io.out.write(
        renderFields([
          ["job", done.job.id],
          ["type", done.job.type],
          ["state", done.job.state],
          ...(done.job.error ? ([["error", done.job.error]] as [string, string][]) : []),
        ]),
      );
      if (done.job.last_stdout)
        io.out.write(
          `\nphases:\n${done.job.last_stdout
            .split("\n")
            .map((l) => `  ${l}`)
            .join("\n")}\n`,
        );
    }
    if (done.job.state === "failed") throw new CliError(`job ${job.id} failed: ${done.job.error ?? "no reason given"}`);
    const undo = /promoting preview (pvw_\w+)/.exec(done.job.last_stdout ?? "")?.[1];
    if (undo && format !== "json")
      note(`To undo within 24 hours: ask an admin for a project.promote_preview approval, then \`capydb previews promote ${undo} --approval-token ...\`.`);
  }

  const approvalToken = (o: { approvalToken?: string }, action: string) => {
    const token = o.approvalToken ?? process.env.CAPYDB_APPROVAL_TOKEN;
    if (!token) {
      throw new CliError(
        `--approval-token is required: an organization admin approves ${action} (POST /v1/projects/{id}/approvals while signed in, or an operator with \`capydb-admin approval create --action ${action}\`)`,
        exitCodes.usage,
      );
    }
    return token;
  };

  const projects = program.command("projects").description("the projects the key may see");
  projects
    .command("list")
    .description("list the organization's projects (a project-scoped key sees its one project)")
    .action(async (_o: unknown, cmd: Command) => {
      const { client, format } = kit.context(cmd);
      const res = await client.listProjects();
      if (format === "json") return printJson(io, res.body);
      if (!res.data.projects.length) return note("No projects.");
      io.out.write(
        renderTable(
          ["ID", "NAME", "ENVIRONMENT", "DATABASE", "POSTGRES"],
          res.data.projects.map((p) => [p.id, p.name, p.environment, p.database_name, p.postgres_version ?? "-"]),
        ),
      );
    });
  projects
    .command("get [project-id]")
    .description("show a project (default: the configured one)")
    .action(async (id: string | undefined, _o: unknown, cmd: Command) => {
      const { client, format, project } = kit.context(cmd);
      const res = await client.getProject(id ?? project());
      if (format === "json") return printJson(io, res.body);
      io.out.write(projectFields(res.data.project));
    });

  program
    .command("restore")
    .description("restore a backup, a restore point or a point in time into a new preview database, an existing one, or the project")
    .option("--backup-key <key>", "the backup to restore (its backup_key, from `capydb backups list -o json`)")
    .option("--restore-point <id>", "restore what an active restore point keeps (its backup, or its point in time)")
    .option(
      "--restore-time <time>",
      "restore the project's database as it was at this moment: RFC 3339 (2026-12-06T14:31:00Z) or a time ago (-15m, -2h); see `capydb pitr` for the window",
    )
    .addOption(
      new Option(
        "--target-kind <kind>",
        "new_preview (default), preview, or project (over the project's database: needs --approval-token; refused for production projects)",
      ).choices(["new_preview", "preview", "project"]),
    )
    .option("--approval-token <token>", "for --target-kind project: an admin's project.restore_overwrite approval (or CAPYDB_APPROVAL_TOKEN)")
    .option("--preview <id>", "the preview to restore into (--target-kind preview)")
    .option("--preview-name <name>", "name of the new preview")
    .option("--ttl-hours <n>", "the new preview is deleted after this many hours (1-168, default 24)", kit.int("--ttl-hours", 1, 168))
    .option("--recreate", "restoring into an existing preview (which replaces its data): drop and recreate its database first")
    .option("--allow-unverified", "restore a backup whose verification did not pass")
    .option("--wait", "wait until the preview is ready (or the restore failed)")
    .option("--wait-timeout <duration>", "give up waiting after this long (exit 6)", "30m")
    .action(
      async (
        o: {
          backupKey?: string;
          restorePoint?: string;
          restoreTime?: string;
          targetKind?: string;
          approvalToken?: string;
          preview?: string;
          previewName?: string;
          ttlHours?: number;
          recreate?: boolean;
          allowUnverified?: boolean;
          wait?: boolean;
          waitTimeout: string;
        },
        cmd: Command,
      ) => {
        if ([o.backupKey, o.restorePoint, o.restoreTime].filter(Boolean).length !== 1) {
          throw new CliError("give exactly one of --backup-key, --restore-point or --restore-time", exitCodes.usage);
        }
        const restoreTime = o.restoreTime ? parsePointInTime(o.restoreTime, "--restore-time") : undefined;
        const targetKind = o.targetKind ?? (o.preview ? "preview" : "new_preview");
        const token = targetKind === "project" ? approvalToken(o, "project.restore_overwrite") : undefined;
        const { client, format, project } = kit.context(cmd);
        const res = await client.restore(project(), {
          backup_key: o.backupKey,
          restore_point_id: o.restorePoint,
          restore_time: restoreTime,
          target_kind: targetKind,
          preview_id: o.preview,
          preview_name: o.previewName,
          ttl_hours: o.ttlHours,
          recreate: o.recreate ?? false,
          allow_unverified_backup: o.allowUnverified ?? false,
          ...(token ? { approval_token: token } : {}),
        });
        const wait = Boolean(o.wait || cmd.getOptionValueSource("waitTimeout") === "cli");
        const pitr = res.data.pitr;
        if (pitr && format !== "json") {
          note(
            pitr.restore_time_clamped
              ? `Restoring to ${pitr.restore_time}, the latest restorable time (${pitr.requested_restore_time} is not in the archive yet).`
              : `Restoring to ${pitr.restore_time}.`,
          );
        }
        const extra = pitr ? { pitr } : {};
        if (targetKind === "project") return finishCutover(client, format, res.data.job, wait, o.waitTimeout, extra);
        await finish(cmd, client, format, res.data.job, wait, o.waitTimeout, extra);
      },
    );

  const previews = program.command("previews").description("preview databases: short-lived copies (or empty databases) with their own login");
  previews.command("list").action(async (_o: unknown, cmd: Command) => {
    const { client, format, project } = kit.context(cmd);
    const res = await client.listPreviews(project());
    if (format === "json") return printJson(io, res.body);
    if (!res.data.preview_databases.length) return note("No preview databases. Make one with `capydb previews create --mode clone --wait`.");
    io.out.write(previewsTable(res.data.preview_databases));
  });
  previews
    .command("create")
    .addOption(new Option("--mode <mode>", "empty, or clone (the newest verified backup)").choices(["empty", "clone"]).default("empty"))
    .option("--name <name>", "a name to recognise it by")
    .option("--ttl-hours <n>", "deleted after this many hours (1-168, default 24)", kit.int("--ttl-hours", 1, 168))
    .option("--wait", "wait until it is ready")
    .option("--wait-timeout <duration>", "give up waiting after this long (exit 6)", "30m")
    .action(async (o: { mode: "empty" | "clone"; name?: string; ttlHours?: number; wait?: boolean; waitTimeout: string }, cmd: Command) => {
      const { client, format, project } = kit.context(cmd);
      const res = await client.createPreview(project(), { mode: o.mode, name: o.name, ttl_hours: o.ttlHours });
      await finish(cmd, client, format, res.data.job, Boolean(o.wait || cmd.getOptionValueSource("waitTimeout") === "cli"), o.waitTimeout);
    });
  previews.command("get <preview-id>").action(async (id: string, _o: unknown, cmd: Command) => {
    const { client, format } = kit.context(cmd);
    const res = await client.getPreview(id);
    if (format === "json") return printJson(io, res.body);
    io.out.write(previewFields(res.data.preview));
  });
  for (const [name, what] of [
    ["delete", "drop the preview's database and its role"],
    ["reset", "empty it again, or re-clone it from the newest verified backup"],
  ] as const) {
    previews
      .command(`${name} <preview-id>`)
      .description(what)
      .option("--wait", "wait until it is done")
      .option("--wait-timeout <duration>", "give up waiting after this long (exit 6)", "30m")
      .action(async (id: string, o: { wait?: boolean; waitTimeout: string }, cmd: Command) => {
        const { client, format } = kit.context(cmd);
        const res = name === "delete" ? await client.deletePreview(id) : await client.resetPreview(id);
        await finish(cmd, client, format, res.data.job, Boolean(o.wait || cmd.getOptionValueSource("waitTimeout") === "cli"), o.waitTimeout);
      });
  }
  previews
    .command("promote <preview-id>")
    .description(
      "make the preview's data the project's database: a verified safety backup first, then one short swap; the old data stays 24 hours as a pre-promote preview",
    )
    .option("--approval-token <token>", "an admin's project.promote_preview approval of the project (or CAPYDB_APPROVAL_TOKEN)")
    .option("--wait", "wait until it is done, showing each phase")
    .option("--wait-timeout <duration>", "give up waiting after this long (exit 6)", "30m")
    .action(async (id: string, o: { approvalToken?: string; wait?: boolean; waitTimeout: string }, cmd: Command) => {
      const token = approvalToken(o, "project.promote_preview");
      const { client, format } = kit.context(cmd);
      const res = await client.promotePreview(id, token);
      await finishCutover(client, format, res.data.job, Boolean(o.wait || cmd.getOptionValueSource("waitTimeout") === "cli"), o.waitTimeout);
    });
  previews
    .command("extend <preview-id>")
    .description("keep it: it now expires --ttl-hours from now")
    .requiredOption("--ttl-hours <n>", "1-168", kit.int("--ttl-hours", 1, 168))
    .action(async (id: string, o: { ttlHours: number }, cmd: Command) => {
      const { client, format } = kit.context(cmd);
      const res = await client.extendPreview(id, o.ttlHours);
      if (format === "json") return printJson(io, res.body);
      io.out.write(previewFields(res.data.preview));
    });
  previews
    .command("connect <preview-id>")
    .description("print the preview's connection URL (it holds the password); --psql opens psql with it")
    .option("--psql", "run psql on the preview")
    .action(async (id: string, o: { psql?: boolean }, cmd: Command) => {
      const { client, format } = kit.context(cmd);
      const res = await client.previewConnections(id);
      const url = res.data.connections.direct_url;
      if (!o.psql) {
        if (format === "json") return printJson(io, res.body);
        return void io.out.write(url + "\n");
      }
      // The URL goes in the environment, not argv, so the password stays out of `ps`.
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn("psql", [], { stdio: "inherit", env: { ...process.env, PGDATABASE: url } });
        child.on("error", (err) =>
          reject(
            new CliError(`could not run psql (${err.message}): install the PostgreSQL client, or connect with the URL from \`capydb previews connect ${id}\``),
          ),
        );
        child.on("close", (c) => resolve(c ?? 1));
      });
      if (code !== 0) throw new CliError(`psql exited with ${code}`);
    });

  const points = program.command("restore-points").description("labelled restore points: each keeps its backup (or its point in time) past retention");
  points.command("list").action(async (_o: unknown, cmd: Command) => {
    const { client, format, project } = kit.context(cmd);
    const res = await client.listRestorePoints(project());
    if (format === "json") return printJson(io, res.body);
    if (!res.data.restore_points.length) return note("No restore points. Pin a backup with `capydb restore-points create --label NAME`.");
    io.out.write(pointsTable(res.data.restore_points));
  });
  points
    .command("create")
    .requiredOption("--label <label>", "what it is for (e.g. before-v2-migration)")
    .addOption(new Option("--kind <kind>", "backup (pins a backup) or pitr (a moment of the WAL archive)").choices(["backup", "pitr"]).default("backup"))
    .option("--backup-key <key>", "kind backup: the backup to pin (default: the newest verified one)")
    .option("--pitr-time <time>", "kind pitr: the moment, RFC 3339 or a time ago (-15m); default now")
    .option("--note <text>", "a note")
    .action(async (o: { label: string; kind: "backup" | "pitr"; backupKey?: string; pitrTime?: string; note?: string }, cmd: Command) => {
      if (o.kind === "pitr" && o.backupKey) throw new CliError("--backup-key is for --kind backup", exitCodes.usage);
      if (o.kind === "backup" && o.pitrTime) throw new CliError("--pitr-time is for --kind pitr", exitCodes.usage);
      const pitrTime = o.pitrTime ? parsePointInTime(o.pitrTime, "--pitr-time") : undefined;
      const { client, format, project } = kit.context(cmd);
      const res = await client.createRestorePoint(project(), { label: o.label, kind: o.kind, backup_key: o.backupKey, pitr_time: pitrTime, note: o.note });
      if (format === "json") return printJson(io, res.body);
      io.out.write(pointsTable([res.data.restore_point]));
    });
  points.command("delete <restore-point-id>").action(async (id: string, _o: unknown, cmd: Command) => {
    const { client, format, project } = kit.context(cmd);
    const res = await client.deleteRestorePoint(project(), id);
    if (format === "json") return printJson(io, res.body);
    io.out.write(pointsTable([res.data.restore_point]));
    note("Its backup is back under normal retention.");
  });
}
