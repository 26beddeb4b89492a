import { newBackupItem, type BackupItem } from "../../core/backups/backups.ts";
import { keys } from "../../core/db/keys.ts";
import { putItem } from "../../core/db/store.ts";
import { iso } from "../../core/deps.ts";
import { newId } from "../../core/ids.ts";
import { getProject } from "../../core/orgs/orgs.ts";
import type { TestEnv } from "./env.ts";

/**
 * A completed, verified backup record as the worker leaves it, with no worker run and no artifact:
 * for tests of the API's checks only (the download route signs a URL without reading the object).
 */
export async function fakeBackup(env: Pick<TestEnv, "deps">, projectId: string, fields: Partial<BackupItem> = {}): Promise<BackupItem> {
  const project = (await getProject(env.deps, projectId))!;
  const now = new Date();
  const b: BackupItem = {
    ...newBackupItem(project, now, { jobId: newId("job", now), retentionDays: 14, label: "fake", scheduleId: null }),
    state: "completed",
    verification_state: "verified",
    verified_at: iso(now),
    size_bytes: 1234,
    sha256: "0".repeat(64),
    pg_dump_version: "15.0",
    server_version: "15.0",
    row_counts: { "public.t": 1 },
    ...fields,
  };
  await putItem(env.deps, { ...keys.backup(projectId, b.id), ...b, gsi2pk: keys.backupExpiryIndex, gsi2sk: `${b.expires_at}#${b.id}` });
  return b;
}
