import type { ApiClient, Backup, Job } from "./client.ts";
import { CliError, exitCodes } from "./errors.ts";
import { formatBytes, formatDuration } from "./output.ts";

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses `--wait-timeout`: `30m`, `1s`, `1h30m`, `500ms`. A bare number is refused rather than
 * guessed (seconds or minutes?).
 */
export function parseDuration(text: string): number {
  const s = text.trim().toLowerCase();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(s)) {
    throw new CliError(`invalid duration "${text}": use a number and a unit, like 90s, 30m, 1h30m`, exitCodes.usage);
  }
  let ms = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) ms += Number(m[1]) * (units[m[2]!] ?? 0);
  if (ms <= 0) throw new CliError(`invalid duration "${text}": it must be more than zero`, exitCodes.usage);
  return Math.round(ms);
}

const spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/** One status line on a terminal, redrawn in place with a spinner and the elapsed time. */
export class Progress {
  private text = "";
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();

  constructor(private readonly stream: NodeJS.WriteStream) {}

  start(): this {
    this.timer = setInterval(() => this.draw(), 120);
    this.timer.unref();
    return this;
  }

  update(text: string): void {
    this.text = text;
    this.draw();
  }

  elapsed(): string {
    return formatDuration(Date.now() - this.started);
  }

  /** Clears the line; `final` (if any) stays on it. */
  stop(final?: string): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stream.write("\r\x1b[2K" + (final ? final + "\n" : ""));
  }

  private draw(): void {
    if (!this.timer) return;
    const line = `${spinner[this.frame++ % spinner.length]} ${this.text} · ${this.elapsed()}`;
    const width = this.stream.columns || 100;
    this.stream.write("\r\x1b[2K" + (line.length > width - 1 ? line.slice(0, width - 2) + "…" : line));
  }
}

export interface WaitOptions {
  /** Absolute deadline (epoch ms) of the whole wait. */
  deadline: number;
  /** As the user wrote it, for the timeout message. */
  timeoutText: string;
  progress?: Progress;
  /** First poll interval; it grows to 5 s on long waits. */
  pollMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isTerminal = (j: Job) => j.state === "completed" || j.state === "failed";

/** Runs `fn` but gives up at the deadline, so a slow or retried request cannot overrun --wait-timeout. */
async function beforeDeadline<T>(deadline: number, fn: () => Promise<T>, onTimeout: () => CliError): Promise<T> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) throw onTimeout();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), remaining);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const pollDelay = (o: WaitOptions, elapsedMs: number) => {
  const base = o.pollMs ?? 1000;
  return elapsedMs < 30_000 ? base : elapsedMs < 120_000 ? Math.max(base, 2000) : Math.max(base, 5000);
};

const followHint = (jobId: string) => `it goes on on the server: follow it with \`capydb jobs get ${jobId} --wait\``;

/** A promote or an overwrite restore: a job in phases, which it lists in `last_stdout` (one line each). */
export const isCutover = (job: Pick<Job, "type" | "preview_database_id">) =>
  job.type === "project.promote_preview" || (job.type === "project.restore" && job.preview_database_id === null);

/** The phase a promote or overwrite restore is in, from the last line it wrote. */
export function cutoverPhase(job: Pick<Job, "last_stdout" | "state" | "type">): string {
  const last = job.last_stdout?.trim().split("\n").at(-1) ?? "";
  if (!last) return job.state === "pending" ? "queued" : job.type === "project.restore" ? "restoring the backup into a hidden database" : "starting";
  if (/restored into a hidden database/.test(last)) return "restore checked · safety backup next";
  if (/safety backup \S+ requested/.test(last)) return "safety backup: dumping and verifying the project's database";
  if (/safety backup \S+ verified/.test(last)) return "safety backup verified · swapping the databases";
  if (/^\S+ swapped/.test(last)) return "swapped · keeping the old data as a pre-promote preview";
  return last.replace(/^\S+ /, "");
}

export function jobStatus(job: Job, backup?: Backup): string {
  const attempt = `attempt ${Math.max(job.attempts, 1)}/${job.max_attempts}`;
  if (isCutover(job)) return `job ${job.id}: ${cutoverPhase(job)} · ${attempt}`;
  let phase: string = job.state === "pending" ? "queued" : job.state;
  if (job.state === "pending" && job.attempts > 0) phase = `waiting to retry (${job.error ?? "transient failure"})`;
  if (job.state === "running" && backup) {
    phase = backup.verification_state === "running" ? `verifying the restore (${formatBytes(backup.size_bytes)} dumped)` : "dumping the database";
  }
  return `job ${job.id}: ${phase} · ${attempt}`;
}

/**
 * Polls the job until it completes or fails. `watch` (optional) is called each round while the
 * job runs, to show more detail on the progress line (the backup's size and verification).
 */
export async function waitForJob(
  client: ApiClient,
  jobId: string,
  o: WaitOptions,
  watch?: (job: Job) => Promise<Backup | undefined>,
): Promise<{ job: Job; body: unknown }> {
  const started = Date.now();
  let last: Job | undefined;
  const timedOut = () =>
    new CliError(
      `timed out after ${o.timeoutText} waiting for job ${jobId}${last ? ` (still ${last.state}, attempt ${last.attempts}/${last.max_attempts})` : ""}; ${followHint(jobId)}`,
      exitCodes.timeout,
    );
  for (;;) {
    const res = await beforeDeadline(o.deadline, () => client.getJob(jobId), timedOut);
    last = res.data.job;
    if (isTerminal(last)) return { job: last, body: res.body };
    let backup: Backup | undefined;
    if (watch && last.state === "running") backup = await watch(last).catch(() => undefined);
    o.progress?.update(jobStatus(last, backup));
    const delay = Math.min(pollDelay(o, Date.now() - started), o.deadline - Date.now());
    if (delay <= 0) throw timedOut();
    await sleep(delay);
  }
}

const ulidOf = (id: string) => id.slice(id.indexOf("_") + 1);

/**
 * The backup a `project.backup` job makes. The API's Job has no backup id, but the service writes
 * the backup and its job in one transaction with the same `created_at`, and mints the backup's id
 * just before the job's: among the project's backups created at that instant, the one whose id
 * sorts last before the job's is it.
 */
export async function findJobBackup(client: ApiClient, projectId: string, job: Job, pageSize = 25): Promise<{ backup: Backup; body: unknown } | undefined> {
  const candidates: { backup: Backup; body: unknown }[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 40; page++) {
    const res = await client.listBackups(projectId, { limit: pageSize, cursor });
    const raw = (res.body as { backups: unknown[] }).backups;
    res.data.backups.forEach((b, i) => {
      if (b.created_at === job.created_at) candidates.push({ backup: b, body: raw[i] });
    });
    const oldest = res.data.backups.at(-1);
    // Newest first: once a page reaches older backups, the job's backup is behind us.
    if (!res.nextCursor || !oldest || oldest.created_at < job.created_at) break;
    cursor = res.nextCursor;
  }
  const before = candidates.filter((c) => ulidOf(c.backup.id) < ulidOf(job.id)).sort((a, b) => (ulidOf(a.backup.id) < ulidOf(b.backup.id) ? 1 : -1));
  return before[0] ?? candidates[0];
}

/**
 * The job's backup once it has settled. The job's transition commits first and the backup follows
 * it, so right after the job completes the backup can still read `running` for a moment.
 */
export async function waitForJobBackup(client: ApiClient, projectId: string, job: Job, o: WaitOptions): Promise<{ backup: Backup; body: unknown }> {
  const timedOut = () =>
    new CliError(
      `timed out after ${o.timeoutText}: job ${job.id} is ${job.state} but its backup has not settled yet; see \`capydb backups list\``,
      exitCodes.timeout,
    );
  for (;;) {
    const found = await beforeDeadline(o.deadline, () => findJobBackup(client, projectId, job), timedOut);
    if (!found) throw new CliError(`job ${job.id} is ${job.state} but its backup is not in \`capydb backups list\``);
    if (found.backup.state !== "pending" && found.backup.state !== "running") return found;
    const delay = Math.min(500, o.deadline - Date.now());
    if (delay <= 0) throw timedOut();
    await sleep(delay);
  }
}
