import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { archiver, grants, task } from "../../infra/settings.ts";
import { archiverBundle, archiverEntry } from "../../scripts/build-task.ts";
import { type Created, find, installStandIns, loadSstConfig, ref } from "./sst-standins.ts";
import { removeStandIns } from "./sst-standins.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The WAL archiver deployed: an always-on Fargate service of one task (recording stand-ins, no AWS). */
describe("sst.config.ts: the WAL archiver service", () => {
  let created: Created[];

  beforeEach(async () => {
    vi.resetModules();
    vi.stubEnv("CAPYDB_PG_LAYER_ARN", "arn:aws:lambda:us-east-1:123456789012:layer:pg:1");
    created = installStandIns({ root: repoRoot });
    await (await loadSstConfig(repoRoot)).run();
  });
  afterEach(() => {
    vi.unstubAllEnvs();
    removeStandIns();
  });

  it("runs exactly one task, never two at once (a deploy stops the old one first), no autoscaling", () => {
    const s = find(created, "sst.aws.Service", "Archiver").args;
    expect(s.scaling).toEqual({ min: 1, max: 1, cpuUtilization: false, memoryUtilization: false });
    expect(s.transform.service).toEqual({ deploymentMaximumPercent: 100, deploymentMinimumHealthyPercent: 0 });
    expect(s.loadBalancer).toBeUndefined();
    expect(s.public).toBeUndefined();
    expect(s.dev).toBe(false);
  });

  it("in the task's cluster (shared VPC, NAT's fixed addresses) from the task's image, with the archiver's entrypoint", () => {
    const s = find(created, "sst.aws.Service", "Archiver").args;
    expect(s.cluster.$name).toBe("TaskCluster");
    expect(s).toMatchObject({
      architecture: "arm64",
      cpu: archiver.cpu,
      memory: archiver.memory,
      storage: archiver.storage,
      image: { context: ".", dockerfile: task.dockerfile },
      entrypoint: ["node", "/var/task/archiver.mjs"],
      environment: { CAPYDB_PG_BIN_DIRS: "/opt/pgsql", CAPYDB_WAL_SPOOL_DIR: "/tmp/capydb-wal" },
    });
  });

  it("linked to the table, the queue and the bucket; the cluster key from the task's SecureString parameter; exactly its grants", () => {
    const s = find(created, "sst.aws.Service", "Archiver").args;
    expect(s.link.map((r: any) => r.$name).sort()).toEqual(["Backups", "Jobs", "Table"]);
    expect(s.ssm).toEqual({ CAPYDB_SECRET_KEY: ref("ClusterSecretKeyParameter", "arn") });
    const policy = JSON.parse(s.transform.taskRole.inlinePolicies[0].policy).Statement;
    expect(policy.flatMap((st: any) => st.Action).sort()).toEqual(grants.archiver.flatMap((g) => g.actions).sort());
    expect(policy.flatMap((st: any) => st.Action)).not.toContain("sqs:ReceiveMessage");
    expect(JSON.parse(s.transform.executionRole.inlinePolicies[0].policy).Statement).toEqual([
      { Effect: "Allow", Action: ["ssm:GetParameters"], Resource: [ref("ClusterSecretKeyParameter", "arn")] },
    ]);
  });
});

describe("the task image carries the archiver", () => {
  const dockerfile = readFileSync(path.join(repoRoot, task.dockerfile), "utf8");
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));

  it("builds functions/archiver.ts beside the task's bundle and copies it to /var/task/archiver.mjs", () => {
    expect(archiverEntry).toBe(`functions/${archiver.entry}.ts`);
    expect(archiverBundle).toBe("dist/task/archiver.mjs");
    const out = /scripts\/build-task\.ts (\S+)$/m.exec(dockerfile)![1]!;
    expect(finalStage).toContain(`COPY --from=build ${path.join(path.dirname(out), "archiver.mjs")} /var/task/archiver.mjs`);
    expect(archiver.entrypoint).toEqual(["node", "/var/task/archiver.mjs"]);
  });

  it("its pg layer build keeps pg_receivewal, pg_basebackup and pg_verifybackup", () => {
    const script = readFileSync(path.join(repoRoot, "scripts/build-pg-layer.sh"), "utf8");
    const tools = /^TOOLS="([^"]+)"$/m.exec(script)![1]!.split(" ");
    expect(tools).toEqual(expect.arrayContaining(["pg_dump", "pg_restore", "pg_receivewal", "pg_basebackup", "pg_verifybackup"]));
    expect(script).toMatch(/make [^\n]*-C src\/bin\/pg_basebackup install/);
    expect(script).toMatch(/make [^\n]*-C src\/bin\/pg_verifybackup install/);
  });
});
