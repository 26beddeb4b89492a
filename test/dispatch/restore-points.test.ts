import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackup, newBackupItem, type BackupItem } from "../../core/backups/backups.ts";
import { sweepExpiredBackups } from "../../core/backups/retention.ts";
import { keys } from "../../core/db/keys.ts";
import { putItem } from "../../core/db/store.ts";
import { iso } from "../../core/deps.ts";
import { newId } from "../../core/ids.ts";
import { getProject } from "../../core/orgs/orgs.ts";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { body } from "../support/spec.ts";
import { withClock } from "./support.ts";

let env: TestEnv;
let tenant: Tenant;
let key: string;
beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "pin_db" });
  key = await tenant.key(["backups:read", "backups:write"]);
});
afterAll(async () => env?.cleanup());

/** A completed, verified backup created at `at` with 1 day of retention, in the expiry index. */
async function backupAt(at: Date): Promise<BackupItem> {
  const project = (await getProject(env.deps, tenant.projectId))!;
  const b: BackupItem = {
    ...newBackupItem(project, at, { jobId: newId("job", at), retentionDays: 1, label: "pin", scheduleId: null }),
    state: "completed",
    verification_state: "verified",
    verified_at: iso(at),
  };
  await putItem(env.deps, { ...keys.backup(b.project_id, b.id), ...b, gsi2pk: keys.backupExpiryIndex, gsi2sk: `${b.expires_at}#${b.id}` });
  return b;
}

const api = async (method: string, path: string, payload?: unknown) => {
  const res = await env.app().request(path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(payload ? { "content-type": "application/json" } : {}) },
    body: payload ? JSON.stringify(payload) : undefined,
  });
  return { status: res.status, body: await body(res) };
};

describe("a restore point pins its backup", () => {
  it("survives retention sweeps past its expiry while pinned, and expires at the next sweep once the point is deleted", async () => {
    const t0 = new Date(Date.now() - 10 * 86400_000);
    const pinned = await backupAt(t0);
    const unpinned = await backupAt(new Date(t0.getTime() + 1000));
    await backupAt(new Date(t0.getTime() + 2000)); // the newest verified one, which the safety rule keeps anyway

    const point = await api("POST", `/v1/projects/${tenant.projectId}/restore-points`, { label: "keep me", backup_key: pinned.backup_key });
    expect(point.status, JSON.stringify(point.body)).toBe(201);
    // A second point on the same backup: both must go before it expires.
    const second = await api("POST", `/v1/projects/${tenant.projectId}/restore-points`, { label: "me too", backup_key: pinned.backup_key });
    expect(second.status, JSON.stringify(second.body)).toBe(201);

    const later = new Date(t0.getTime() + 5 * 86400_000);
    await sweepExpiredBackups(withClock(env.deps, later), "test");
    expect((await getBackup(env.deps, tenant.projectId, pinned.id))?.state).toBe("completed");
    expect((await getBackup(env.deps, tenant.projectId, unpinned.id))?.state).toBe("expired");

    expect((await api("DELETE", `/v1/projects/${tenant.projectId}/restore-points/${point.body.restore_point.id}`)).status).toBe(200);
    await sweepExpiredBackups(withClock(env.deps, later), "test");
    expect((await getBackup(env.deps, tenant.projectId, pinned.id))?.state, "still pinned by the second point").toBe("completed");

    const del = await api("DELETE", `/v1/projects/${tenant.projectId}/restore-points/${second.body.restore_point.id}`);
    expect(del.status).toBe(200);
    // Deleting again is harmless and does not unpin twice.
    expect((await api("DELETE", `/v1/projects/${tenant.projectId}/restore-points/${second.body.restore_point.id}`)).body.restore_point.state).toBe("deleted");
    const report = await sweepExpiredBackups(withClock(env.deps, later), "test");
    expect(report.deleted).toBe(1);
    expect((await getBackup(env.deps, tenant.projectId, pinned.id))?.state).toBe("expired");
  });
});
