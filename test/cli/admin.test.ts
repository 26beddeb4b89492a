import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, uniq, type TestEnv } from "../support/env.ts";
import { body } from "../support/spec.ts";

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => env?.cleanup());

function admin(args: string[], input?: string) {
  const res = spawnSync(process.execPath, ["--import", "tsx", "cli/admin.ts", ...args], {
    input,
    encoding: "utf8",
    env: { ...process.env, ...env.serviceEnv() },
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr, json: () => JSON.parse(res.stdout) };
}

describe("capydb-admin", () => {
  it("sets up an organization, a cluster, a project and a key that the API accepts; the cluster password is never printed", async () => {
    const password = "s3cr3t-Canary-" + uniq("pw");
    const org = admin(["org", "create", "--name", uniq("acme")]);
    expect(org.status, org.stderr).toBe(0);
    const orgId = org.json().id;

    const url = new URL(env.infra.postgresUrl);
    url.password = password;
    const cluster = admin(["cluster", "add", "--name", uniq("eu1"), "--url-stdin"], url.toString());
    expect(cluster.status, cluster.stderr).toBe(0);
    expect(cluster.stdout + cluster.stderr).not.toContain(password);
    expect(Object.keys(cluster.json())).not.toContain("password_sealed");
    expect(cluster.json()).toMatchObject({ host: "127.0.0.1", user: url.username });

    const project = admin(["project", "create", "--org", orgId, "--cluster", cluster.json().id, "--name", "shop", "--database", "shop"]);
    expect(project.status, project.stderr).toBe(0);
    const projectId = project.json().id;
    // The Project as the API shows it. This cluster's password is a canary the server refuses,
    // so its version could not be asked: null, and a note says so.
    expect(project.json()).toMatchObject({
      name: "shop",
      slug: "shop",
      environment: "production",
      state: "ready",
      database_name: "shop",
      postgres_version: null,
    });
    expect(project.stderr).toMatch(/Could not reach the cluster/);

    const key = admin(["key", "create", "--org", orgId, "--scopes", "backups:read,jobs:read", "--name", "ci"]);
    expect(key.status, key.stderr).toBe(0);
    const { key: plaintext, plaintext_api_key, api_key: record } = key.json();
    expect(plaintext_api_key).toBe(plaintext);
    expect(record.source).toBe("admin");
    expect(plaintext).toMatch(/^capy_live_[0-9A-Za-z]{32,}$/);
    expect(record).toMatchObject({ name: "ci", scopes: ["backups:read", "jobs:read"], is_active: true, project_id: null });
    expect(key.stderr).toMatch(/only time/);

    const res = await env.app().request(`/v1/projects/${projectId}/backups`, { headers: { authorization: `Bearer ${plaintext}` } });
    expect(res.status).toBe(200);
    expect(await body(res)).toEqual({ backups: [] });

    const list = admin(["key", "list", "--org", orgId]);
    expect(list.status).toBe(0);
    expect(list.stdout).not.toContain(plaintext);
    expect(list.json()).toEqual([expect.objectContaining({ id: record.id, key_prefix: plaintext.slice(0, 16) })]);

    const revoke = admin(["key", "revoke", record.id, "--org", orgId]);
    expect(revoke.status, revoke.stderr).toBe(0);
    expect(revoke.json()).toMatchObject({ id: record.id, is_active: false });
    const after = await env.app().request(`/v1/projects/${projectId}/backups`, { headers: { authorization: `Bearer ${plaintext}` } });
    expect(after.status).toBe(401);
  });

  it("refuses bad input with exit code 2 and a message naming the problem", () => {
    const noOrg = admin(["key", "create", "--org", "org_01m8bbd943485gy3g6c722w2d4", "--scopes", "backups:read"]);
    expect(noOrg.status).toBe(2);
    expect(noOrg.stderr).toMatch(/organization .* does not exist/);
    const badScope = admin(["key", "create", "--org", "x", "--scopes", "backups:everything"]);
    expect(badScope.status).toBe(2);
    expect(badScope.stderr).toMatch(/scopes/);
    const badUrl = admin(["cluster", "add", "--name", "x", "--url", "mysql://a@b/c"]);
    expect(badUrl.status).toBe(2);
    expect(badUrl.stderr).toMatch(/postgres:\/\//);
    // TLS is verify-full unless the cluster opts out, visibly: a provider's `sslmode=require` is refused without it.
    const unverified = admin(["cluster", "add", "--name", uniq("c"), "--url", "postgres://u:p@db.example.com/postgres?sslmode=require"]);
    expect(unverified.status).toBe(2);
    expect(unverified.stderr).toContain("sslmode=require does not verify the server's certificate and host name");
    expect(unverified.stderr).toContain("--insecure-tls");
    const optedOut = admin(["cluster", "add", "--name", uniq("c"), "--url", "postgres://u:p@db.example.com/postgres?sslmode=require", "--insecure-tls"]);
    expect(optedOut.status, optedOut.stderr).toBe(0);
    expect(optedOut.json()).toMatchObject({ sslmode: "require", insecure_tls: true });
    expect(admin(["cluster", "add", "--name", uniq("c"), "--url", "postgres://u:p@db.example.com/postgres"]).json()).toMatchObject({
      sslmode: null,
      insecure_tls: false,
    });
    const usage = admin(["project", "create", "--org", "x"]);
    expect(usage.status).toBe(2);
  });

  it("project create takes --environment (production or non_production)", () => {
    const orgId = admin(["org", "create", "--name", uniq("o")]).json().id;
    // The local PostgreSQL serves no TLS: the explicit opt-out, or the version probe could not connect.
    // The suite's shared server holds every test's databases, open to PUBLIC: the isolation check
    // (test/pg/isolation.test.ts) would refuse it, so this cluster claims pg_hba.conf isolation.
    const clusterId = admin(["cluster", "add", "--name", uniq("c"), "--url", env.infra.postgresUrl, "--insecure-tls", "--pg-hba-isolated"]).json().id;
    const staging = admin([
      "project",
      "create",
      "--org",
      orgId,
      "--cluster",
      clusterId,
      "--name",
      "staging",
      "--database",
      "s",
      "--environment",
      "non_production",
    ]);
    expect(staging.status, staging.stderr).toBe(0);
    expect(staging.json()).toMatchObject({ environment: "non_production" });
    expect(staging.json().postgres_version).toMatch(/^\d+$/); // asked of the (reachable) cluster
    const bad = admin(["project", "create", "--org", orgId, "--cluster", clusterId, "--name", "x", "--database", "x", "--environment", "prod"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--environment.*production, non_production/s);
  });

  it("refuses organization scopes on a project-scoped key", () => {
    const orgId = admin(["org", "create", "--name", uniq("o")]).json().id;
    const clusterId = admin(["cluster", "add", "--name", uniq("c"), "--url", env.infra.postgresUrl]).json().id;
    const projectId = admin(["project", "create", "--org", orgId, "--cluster", clusterId, "--name", "p", "--database", "p"]).json().id;
    const res = admin(["key", "create", "--org", orgId, "--project", projectId, "--scopes", "backups:read,api_keys:write"]);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/project-scoped key cannot have organization scopes: api_keys:write/);
  });

  it("names the missing setting when it has no configuration", () => {
    const res = spawnSync(process.execPath, ["--import", "tsx", "cli/admin.ts", "key", "list", "--org", "x"], {
      encoding: "utf8",
      env: { PATH: process.env.PATH, CAPYDB_HOME: "/nonexistent" },
    });
    expect(res.status).toBe(1);
    expect(res.stderr.trim()).toBe("capydb-admin: missing setting CAPYDB_TABLE");
  });
});
