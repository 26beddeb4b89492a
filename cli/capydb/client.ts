import { createRequire } from "node:module";
import type { z } from "../../core/zod.ts";
import { CliError, exitCodeForStatus, exitCodes } from "./errors.ts";
import { ListAuditEventsResponse } from "../../core/contract/audit-events.ts";
import { CreateBackupRequest, CreateBackupResponse, DownloadResponse, ListBackupsResponse } from "../../core/contract/backups.ts";
import { CreateExportResponse, ListExportsResponse } from "../../core/contract/exports.ts";
import { GetJobResponse, ListJobsResponse } from "../../core/contract/jobs.ts";
import { MeResponse } from "../../core/contract/me.ts";
import { CliLoginPoll, CliLoginSession, CreateCliLoginRequest } from "../../core/contract/cli-login.ts";
import {
  CreatePreviewResponse,
  DeletePreviewResponse,
  ExtendPreviewResponse,
  GetPreviewResponse,
  ListPreviewsResponse,
  PreviewConnectionsResponse,
  PromotePreviewResponse,
  ResetPreviewResponse,
} from "../../core/contract/previews.ts";
import { GetPitrResponse } from "../../core/contract/pitr.ts";
import { GetProjectResponse, ListProjectsResponse } from "../../core/contract/projects.ts";
import { CreateRestorePointResponse, DeleteRestorePointResponse, ListRestorePointsResponse } from "../../core/contract/restore-points.ts";
import { CreateRestoreResponse } from "../../core/contract/restores.ts";
import { ListScheduledBackupsResponse, PutScheduledBackupRequest, PutScheduledBackupResponse } from "../../core/contract/scheduled-backups.ts";
import { DeliveryResponse, ListWebhookDeliveriesResponse } from "../../core/contract/webhook-deliveries.ts";
import {
  CreateWebhookEndpointRequest,
  DeleteWebhookEndpointResponse,
  EndpointWithSecret,
  GetWebhookEndpointResponse,
  ListWebhookEndpointsResponse,
  UpdateWebhookEndpointRequest,
  UpdateWebhookEndpointResponse,
} from "../../core/contract/webhook-endpoints.ts";

export type CreateBackupBody = z.infer<typeof CreateBackupRequest>;
export type PutScheduleBody = z.infer<typeof PutScheduledBackupRequest>;
export type ListBackups = z.infer<typeof ListBackupsResponse>;
export type ListJobs = z.infer<typeof ListJobsResponse>;
export type GetJob = z.infer<typeof GetJobResponse>;
export type CreateBackup = z.infer<typeof CreateBackupResponse>;
export type ListSchedules = z.infer<typeof ListScheduledBackupsResponse>;
export type PutSchedule = z.infer<typeof PutScheduledBackupResponse>;
export type Me = z.infer<typeof MeResponse>;
export type ListAuditEvents = z.infer<typeof ListAuditEventsResponse>;
export type AuditEvent = ListAuditEvents["audit_events"][number];
export type ListExports = z.infer<typeof ListExportsResponse>;
export type Export = ListExports["exports"][number];
export type Download = z.infer<typeof DownloadResponse>["download"];
export type Job = GetJob["job"];
export type Project = z.infer<typeof GetProjectResponse>["project"];
export type Preview = z.infer<typeof GetPreviewResponse>["preview"];
export type RestorePoint = z.infer<typeof CreateRestorePointResponse>["restore_point"];
export type Backup = ListBackups["backups"][number];
export type Pitr = z.infer<typeof GetPitrResponse>["pitr"];
export type ScheduledBackup = PutSchedule["scheduled_backup"];
export type WebhookEndpoint = z.infer<typeof GetWebhookEndpointResponse>["webhook_endpoint"];
export type WebhookDelivery = z.infer<typeof DeliveryResponse>["delivery"];
export type CreateWebhookEndpointBody = z.infer<typeof CreateWebhookEndpointRequest>;
export type UpdateWebhookEndpointBody = z.infer<typeof UpdateWebhookEndpointRequest>;

/**
 * A response: `data` is the body validated by the route's own schema (typed); `body` is the body
 * exactly as the API sent it, which `-o json` prints (zod would drop fields this CLI does not know).
 */
export interface ApiResult<T> {
  data: T;
  body: unknown;
  nextCursor?: string;
}

/** An error answer of the API: its `{"error"}` message, status and the request it answered. */
export class ApiError extends CliError {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly apiMessage: string,
    readonly method: string,
    readonly path: string,
    readonly retryAfter?: string,
  ) {
    super(apiMessage, exitCodeForStatus(status));
  }
}

export interface RetryPolicy {
  /** Total attempts of an idempotent GET (1 = no retry). */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface ClientOptions {
  baseUrl: string;
  apiKey: string;
  retry?: Partial<RetryPolicy>;
  requestTimeoutMs?: number;
  /** Called before each retry (the wait display uses it; default silent). */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
  fetch?: typeof fetch;
}

export const cliVersion: string = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seg = encodeURIComponent;

/** Statuses worth another try of an idempotent request: the server or a proxy failed, not the request. */
const retryableStatus = (s: number) => s === 429 || s === 500 || s === 502 || s === 503 || s === 504;

/**
 * The HTTP client of the backups API, typed by the route schemas the server itself validates with.
 * Only GETs are retried (network errors and 5xx, exponential backoff with jitter, Retry-After
 * honoured); POST and PUT are sent once, because replaying a POST could start a second backup.
 */
export class ApiClient {
  private readonly retry: RetryPolicy;
  private readonly fetchFn: typeof fetch;

  constructor(private readonly opts: ClientOptions) {
    this.retry = { attempts: 4, baseDelayMs: 500, maxDelayMs: 8_000, ...opts.retry };
    this.fetchFn = opts.fetch ?? fetch;
  }

  listBackups(projectId: string, q: { limit?: number; cursor?: string } = {}) {
    return this.get(`/v1/projects/${seg(projectId)}/backups`, ListBackupsResponse, q);
  }

  createBackup(projectId: string, body: CreateBackupBody, opts: { idempotencyKey?: string } = {}) {
    const headers: Record<string, string> = opts.idempotencyKey ? { "idempotency-key": opts.idempotencyKey } : {};
    return this.send("POST", `/v1/projects/${seg(projectId)}/backups`, CreateBackupRequest.parse(body), CreateBackupResponse, headers);
  }

  listSchedules(projectId: string) {
    return this.get(`/v1/projects/${seg(projectId)}/scheduled-backups`, ListScheduledBackupsResponse);
  }

  putSchedule(projectId: string, body: PutScheduleBody) {
    return this.send("PUT", `/v1/projects/${seg(projectId)}/scheduled-backups/default`, PutScheduledBackupRequest.parse(body), PutScheduledBackupResponse);
  }

  listJobs(projectId: string, q: { limit?: number; cursor?: string } = {}) {
    return this.get(`/v1/projects/${seg(projectId)}/jobs`, ListJobsResponse, q);
  }

  getJob(jobId: string) {
    return this.get(`/v1/jobs/${seg(jobId)}`, GetJobResponse);
  }

  listProjectAuditEvents(projectId: string, q: { limit?: number; cursor?: string } = {}) {
    return this.get(`/v1/projects/${seg(projectId)}/audit-events`, ListAuditEventsResponse, q);
  }

  listOrganizationAuditEvents(orgId: string, q: { limit?: number; cursor?: string } = {}) {
    return this.get(`/v1/organizations/${seg(orgId)}/audit-events`, ListAuditEventsResponse, q);
  }

  me() {
    return this.get("/v1/me", MeResponse);
  }

  /** Starts a device login (no credential is sent). */
  startLogin(body: z.input<typeof CreateCliLoginRequest>) {
    return this.send("POST", "/v1/cli/login/sessions", CreateCliLoginRequest.parse(body), CliLoginSession);
  }

  /** Polls a device login with its poll token (in a header, never in the URL). */
  pollLogin(sessionId: string, pollToken: string) {
    return this.get(`/v1/cli/login/sessions/${seg(sessionId)}`, CliLoginPoll, {}, { "x-capydb-poll-token": pollToken });
  }

  listWebhookEndpoints(orgId: string) {
    return this.get(`/v1/organizations/${seg(orgId)}/webhook-endpoints`, ListWebhookEndpointsResponse);
  }

  getWebhookEndpoint(orgId: string, endpointId: string) {
    return this.get(`/v1/organizations/${seg(orgId)}/webhook-endpoints/${seg(endpointId)}`, GetWebhookEndpointResponse);
  }

  createWebhookEndpoint(orgId: string, body: CreateWebhookEndpointBody) {
    return this.send("POST", `/v1/organizations/${seg(orgId)}/webhook-endpoints`, CreateWebhookEndpointRequest.parse(body), EndpointWithSecret);
  }

  updateWebhookEndpoint(orgId: string, endpointId: string, body: UpdateWebhookEndpointBody) {
    return this.send(
      "PATCH",
      `/v1/organizations/${seg(orgId)}/webhook-endpoints/${seg(endpointId)}`,
      UpdateWebhookEndpointRequest.parse(body),
      UpdateWebhookEndpointResponse,
    );
  }

  deleteWebhookEndpoint(orgId: string, endpointId: string) {
    return this.send("DELETE", `/v1/organizations/${seg(orgId)}/webhook-endpoints/${seg(endpointId)}`, undefined, DeleteWebhookEndpointResponse);
  }

  rotateWebhookSecret(orgId: string, endpointId: string) {
    return this.send("POST", `/v1/organizations/${seg(orgId)}/webhook-endpoints/${seg(endpointId)}/rotate-secret`, undefined, EndpointWithSecret);
  }

  testWebhookEndpoint(orgId: string, endpointId: string) {
    return this.send("POST", `/v1/organizations/${seg(orgId)}/webhook-endpoints/${seg(endpointId)}/test`, undefined, DeliveryResponse);
  }

  listWebhookDeliveries(orgId: string, endpointId: string, q: { limit?: number; cursor?: string } = {}) {
    return this.get(`/v1/organizations/${seg(orgId)}/webhook-endpoints/${seg(endpointId)}/deliveries`, ListWebhookDeliveriesResponse, q);
  }

  redeliverWebhook(orgId: string, endpointId: string, deliveryId: string) {
    return this.send(
      "POST",
      `/v1/organizations/${seg(orgId)}/webhook-endpoints/${seg(endpointId)}/deliveries/${seg(deliveryId)}/redeliver`,
      undefined,
      DeliveryResponse,
    );
  }

  listProjects() {
    return this.get("/v1/projects", ListProjectsResponse);
  }

  getPitr(projectId: string) {
    return this.get(`/v1/projects/${seg(projectId)}/pitr`, GetPitrResponse);
  }

  getProject(projectId: string) {
    return this.get(`/v1/projects/${seg(projectId)}`, GetProjectResponse);
  }

  restore(projectId: string, body: Record<string, unknown>) {
    return this.send("POST", `/v1/projects/${seg(projectId)}/restores`, body, CreateRestoreResponse);
  }

  listPreviews(projectId: string) {
    return this.get(`/v1/projects/${seg(projectId)}/preview-databases`, ListPreviewsResponse);
  }

  createPreview(projectId: string, body: { name?: string; mode?: "empty" | "clone"; ttl_hours?: number }) {
    return this.send("POST", `/v1/projects/${seg(projectId)}/preview-databases`, body, CreatePreviewResponse);
  }

  getPreview(previewId: string) {
    return this.get(`/v1/preview-databases/${seg(previewId)}`, GetPreviewResponse);
  }

  deletePreview(previewId: string) {
    return this.send("DELETE", `/v1/preview-databases/${seg(previewId)}`, undefined, DeletePreviewResponse);
  }

  resetPreview(previewId: string) {
    return this.send("POST", `/v1/preview-databases/${seg(previewId)}/reset`, undefined, ResetPreviewResponse);
  }

  promotePreview(previewId: string, approvalToken: string) {
    return this.send("POST", `/v1/preview-databases/${seg(previewId)}/promote`, { approval_token: approvalToken }, PromotePreviewResponse);
  }

  extendPreview(previewId: string, ttlHours: number) {
    return this.send("POST", `/v1/preview-databases/${seg(previewId)}/extend`, { ttl_hours: ttlHours }, ExtendPreviewResponse);
  }

  previewConnections(previewId: string) {
    return this.get(`/v1/preview-databases/${seg(previewId)}/connections`, PreviewConnectionsResponse);
  }

  listRestorePoints(projectId: string) {
    return this.get(`/v1/projects/${seg(projectId)}/restore-points`, ListRestorePointsResponse);
  }

  createRestorePoint(projectId: string, body: { label: string; kind?: "backup" | "pitr"; backup_key?: string; pitr_time?: string; note?: string }) {
    return this.send("POST", `/v1/projects/${seg(projectId)}/restore-points`, body, CreateRestorePointResponse);
  }

  deleteRestorePoint(projectId: string, pointId: string) {
    return this.send("DELETE", `/v1/projects/${seg(projectId)}/restore-points/${seg(pointId)}`, undefined, DeleteRestorePointResponse);
  }

  backupDownload(projectId: string, backupId: string) {
    return this.get(`/v1/projects/${seg(projectId)}/backups/${seg(backupId)}/download`, DownloadResponse);
  }

  createExport(projectId: string) {
    return this.send("POST", `/v1/projects/${seg(projectId)}/exports`, {}, CreateExportResponse);
  }

  listExports(projectId: string, q: { limit?: number; cursor?: string } = {}) {
    return this.get(`/v1/projects/${seg(projectId)}/exports`, ListExportsResponse, q);
  }

  exportDownload(projectId: string, exportId: string) {
    return this.get(`/v1/projects/${seg(projectId)}/exports/${seg(exportId)}/download`, DownloadResponse);
  }

  private url(path: string, query: Record<string, string | number | undefined> = {}): string {
    const u = new URL(this.opts.baseUrl + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    // Without a key (a device login) no Authorization header is sent at all.
    const auth: Record<string, string> = this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {};
    return { accept: "application/json", ...auth, "user-agent": `capydb-cli/${cliVersion}`, ...extra };
  }

  private async get<S extends z.ZodType>(
    path: string,
    schema: S,
    query: Record<string, string | number | undefined> = {},
    extraHeaders: Record<string, string> = {},
  ): Promise<ApiResult<z.infer<S>>> {
    const url = this.url(path, query);
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= this.retry.attempts;
      let res: Response;
      try {
        res = await this.fetchFn(url, {
          method: "GET",
          headers: this.headers(extraHeaders),
          signal: AbortSignal.timeout(this.opts.requestTimeoutMs ?? 30_000),
        });
      } catch (err) {
        if (last) throw this.networkError(err, "GET", path, true);
        await this.backoff(attempt, undefined, describeNetworkError(err));
        continue;
      }
      if (retryableStatus(res.status) && !last) {
        await res.body?.cancel();
        await this.backoff(attempt, res.headers.get("retry-after") ?? undefined, `HTTP ${res.status}`);
        continue;
      }
      return this.read(res, "GET", path, schema);
    }
  }

  private async send<S extends z.ZodType>(
    method: "POST" | "PUT" | "PATCH" | "DELETE",
    path: string,
    body: unknown,
    schema: S,
    headers: Record<string, string> = {},
  ): Promise<ApiResult<z.infer<S>>> {
    let res: Response;
    try {
      res = await this.fetchFn(this.url(path), {
        method,
        headers: this.headers(body === undefined ? headers : { "content-type": "application/json", ...headers }),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.opts.requestTimeoutMs ?? 30_000),
      });
    } catch (err) {
      throw this.networkError(err, method, path, false);
    }
    return this.read(res, method, path, schema);
  }

  private async backoff(attempt: number, retryAfter: string | undefined, reason: string): Promise<void> {
    const exp = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    const fromHeader = retryAfter && /^\d+$/.test(retryAfter) ? Math.min(Number(retryAfter) * 1000, this.retry.maxDelayMs) : 0;
    // Full jitter on the exponential part, so many clients do not retry in lockstep.
    const delayMs = Math.max(fromHeader, Math.round(exp / 2 + (Math.random() * exp) / 2));
    this.opts.onRetry?.({ attempt, delayMs, reason });
    await sleep(delayMs);
  }

  private async read<S extends z.ZodType>(res: Response, method: string, path: string, schema: S): Promise<ApiResult<z.infer<S>>> {
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const message =
        body && typeof body === "object" && typeof (body as { error?: unknown }).error === "string"
          ? (body as { error: string }).error
          : `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}`;
      throw new ApiError(res.status, message, method, path, res.headers.get("retry-after") ?? undefined);
    }
    if (body === undefined) {
      throw new CliError(`unexpected answer to ${method} ${path} from ${this.opts.baseUrl} (HTTP ${res.status}, not JSON): is --api-url the CapyDB API?`);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new CliError(
        `unexpected answer to ${method} ${path} from ${this.opts.baseUrl}: ${issue ? `${issue.path.join(".") || "body"}: ${issue.message}` : "invalid body"} (is this CLI up to date, and --api-url the CapyDB API?)`,
      );
    }
    const nextCursor = res.headers.get("x-next-cursor") ?? undefined;
    return { data: parsed.data as z.infer<S>, body, nextCursor };
  }

  private networkError(err: unknown, method: string, path: string, retried: boolean): CliError {
    const reason = describeNetworkError(err);
    const refused = /ECONNREFUSED/.test(reason);
    let message = `could not reach the API at ${this.opts.baseUrl} (${reason})`;
    if (retried) message += ` after ${this.retry.attempts} attempts`;
    if (refused) message += ": is it running? (the local stack: `npm start`) Set the address with --api-url or CAPYDB_API_URL";
    else if (method !== "GET") {
      // Sent once and never replayed: the server may have acted on it.
      message += `; the ${method} ${path} may or may not have been applied: check with \`capydb jobs list\` before trying again`;
    }
    return new CliError(message, exitCodes.error, { cause: err });
  }
}

function describeNetworkError(err: unknown): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return "the request timed out";
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  if (cause?.code) return cause.code;
  if (cause?.message) return cause.message;
  return err instanceof Error ? err.message : String(err);
}
