/** The wire field sets of SPEC sections 1 and 5, written out independently of the code's schemas. */
export const specFields = {
  ScheduledBackup: [
    "id", "organization_id", "project_id", "label", "cron_hour", "cron_minute", "is_active",
    "retention_days", "last_run_at", "last_job_id", "created_at", "updated_at",
  ],
  Backup: [
    "id", "project_id", "database_name", "label", "backup_key", "size_bytes", "state",
    "verification_state", "verified_at", "verification_error", "created_at",
  ],
  Job: [
    "id", "organization_id", "project_id", "cluster_id", "preview_database_id", "type", "state",
    "attempts", "max_attempts", "claimed_at", "claimed_by", "started_at", "completed_at",
    "locked_resource", "retry_classification", "last_exit_code", "last_stdout", "last_stderr",
    "error", "created_at", "updated_at",
  ],
  Export: ["id", "project_id", "database_name", "state", "size_bytes", "created_at", "expires_at"],
  Download: ["download_url", "expires_at", "size_bytes", "sha256"],
  Project: [
    "id", "organization_id", "name", "slug", "environment", "postgres_version", "database_name",
    "state", "region", "plan", "always_on", "runtime_status", "storage_limit_bytes",
    "max_connections", "direct_port", "pooled_port", "role_name", "public_host", "ssl_mode",
    "statement_timeout", "idle_transaction_timeout", "last_error", "latest_job_id",
    "primary_instance_id", "created_at", "updated_at",
  ],
  Preview: [
    "id", "organization_id", "project_id", "name", "mode", "state", "database_name", "role_name",
    "direct_port", "pooled_port", "public_host", "ssl_mode", "source_kind", "source_backup_key",
    "source_database", "source_restore_time", "last_error", "ttl_expires_at", "created_at", "updated_at",
  ],
  Organization: [
    "id", "name", "slug", "billing_plan", "billing_status", "billing_provider",
    "clerk_organization_id", "clerk_organization_slug", "suspended_at", "created_at", "updated_at",
  ],
  WebhookDelivery: [
    "id", "organization_id", "endpoint_id", "event_type", "payload", "state", "attempts",
    "max_attempts", "next_attempt_at", "response_status", "last_error", "created_at",
    "delivered_at", "updated_at",
  ],
  RestorePoint: [
    "id", "organization_id", "project_id", "kind", "label", "note", "backup_id", "backup_key",
    "pitr_time", "state", "created_by_actor_kind", "created_by_actor_id", "created_at", "updated_at",
  ],
  Connections: ["direct_url", "pooled_url", "username"],
  Approval: ["id", "action", "token", "expires_at"],
  AuditEvent: [
    "id", "organization_id", "project_id", "action", "actor_kind", "actor_id", "target_type",
    "target_id", "metadata", "created_at",
  ],
} as const;

export const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Asserts an object has exactly SPEC's fields and that its timestamp fields are RFC 3339 (or null). */
export function expectShape(kind: keyof typeof specFields, obj: unknown, expect: (v: unknown, m?: string) => { toEqual(x: unknown): void; toMatch(r: RegExp): void }) {
  const o = obj as Record<string, unknown>;
  expect(Object.keys(o).sort(), `${kind} fields of ${JSON.stringify(o)}`).toEqual([...specFields[kind]].sort());
  for (const [k, v] of Object.entries(o)) {
    if ((k.endsWith("_at") || k === "created_at") && v !== null) expect(v, `${kind}.${k}`).toMatch(rfc3339);
  }
}

/** Reads a response as JSON, failing with the body text when it is not JSON. */
export async function body(res: Response): Promise<any> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`response ${res.status} is not JSON: ${text.slice(0, 200)}`);
  }
}
