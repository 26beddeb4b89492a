import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../core/config.ts";
import { taskResourceSchema } from "../../core/config.ts";
import { installedPgTools, pickPgTools } from "../../core/pg/pgtools.ts";
import { findServerBinary, hasServerBinary } from "../../core/pg/recovery.ts";
import { pgBinDir, pgLayerDir, pgMajors, task, taskThreshold } from "../../infra/settings.ts";
import { taskBundle, taskEntry } from "../../scripts/build-task.ts";
import { type Created, find, installStandIns, loadSstConfig, ref, removeStandIns } from "./sst-standins.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const linkNames = (args: any): string[] => args.link.map((r: any) => r.$name).sort();

describe("sst.config.ts: the large-job task (recording stand-ins, no AWS)", () => {
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

  it("runs on arm64 with 2 vCPU, 8 GB and the storage setting, from the repository's Dockerfile", () => {
    const t = find(created, "sst.aws.Task", "LargeJobs");
    expect(t.args).toMatchObject({
      architecture: "arm64",
      cpu: "2 vCPU",
      memory: "8 GB",
      storage: task.storage,
      image: { context: ".", dockerfile: "infra/task/Dockerfile" },
      environment: { CAPYDB_PG_BIN_DIRS: "/opt/pgsql", CAPYDB_REQUIRE_VERIFY_CLUSTER: "1" },
      dev: false,
    });
    expect(t.args.cluster.$name).toBe("TaskCluster");
    expect(readFileSync(path.join(repoRoot, t.args.image.dockerfile), "utf8")).toMatch(/^FROM /m);
  });

  it("is linked to the table, the queue and the bucket only; the cluster key comes as a secret (test/infra/iam.test.ts)", () => {
    expect(linkNames(find(created, "sst.aws.Task", "LargeJobs").args)).toEqual(["Backups", "Jobs", "Table"]);
  });

  it("lives in the shared VPC, whose NAT leaves from the deploy's Elastic IPs, in a cluster of its own", () => {
    const vpc = find(created, "sst.aws.Vpc", "Vpc");
    expect(vpc.args.nat).toEqual({ type: "managed", ip: [ref("Egress1", "allocationId"), ref("Egress2", "allocationId")] });
    expect(vpc.args.bastion).toBeUndefined();
    expect(find(created, "sst.aws.Cluster", "TaskCluster").args.vpc.$name).toBe("Vpc");
    // The worker and the dispatcher connect to clusters too: the same VPC.
    expect(find(created, "sst.aws.Queue", "Jobs").calls[0]!.args[0].vpc.$name).toBe("Vpc");
    expect(find(created, "sst.aws.CronV2", "Dispatch").args.function.vpc.$name).toBe("Vpc");
    // S3 and DynamoDB through gateway endpoints on the private route tables, not through NAT.
    const endpoints = created.filter((c) => c.type === "aws.ec2.VpcEndpoint").map((c) => c.args);
    expect(endpoints.map((e) => [e.serviceName, e.vpcEndpointType])).toEqual([
      ["com.amazonaws.us-east-1.s3", "Gateway"],
      ["com.amazonaws.us-east-1.dynamodb", "Gateway"],
    ]);
    expect(endpoints[0].routeTableIds).toEqual([ref("Vpc.privateRouteTable1", "id"), ref("Vpc.privateRouteTable2", "id")]);
    // Not reachable from the internet (public IPs are for outbound traffic only).
    expect(find(created, "sst.aws.Task", "LargeJobs").args.public).toBeUndefined();
  });

  it("lets the worker start the task and nothing more: RunTask on its definition in its cluster, PassRole of its roles to ECS", () => {
    const [fnArgs] = find(created, "sst.aws.Queue", "Jobs").calls[0]!.args;
    // No link to the task (a link grants ecs:* on the cluster's tasks).
    expect(linkNames(fnArgs)).toEqual(["Backups", "ClusterSecretKey", "Jobs", "Table"]);
    const statements = JSON.parse(fnArgs.transform.role.inlinePolicies[0].policy).Statement;
    expect(statements.filter((s: any) => s.Action.some((a: string) => a.startsWith("ecs:") || a.startsWith("iam:")))).toEqual([
      {
        Effect: "Allow",
        Action: ["ecs:RunTask"],
        Resource: [ref("LargeJobs", "taskDefinition")],
        Condition: { ArnEquals: { "ecs:cluster": [ref("LargeJobs", "cluster")] } },
      },
      {
        Effect: "Allow",
        Action: ["iam:PassRole"],
        Resource: [ref("LargeJobs.nodes.taskRole", "arn"), ref("LargeJobs.nodes.executionRole", "arn")],
        Condition: { StringEquals: { "iam:PassedToService": ["ecs-tasks.amazonaws.com"] } },
      },
    ]);
  });

  it("gives the worker what RunTask needs and the threshold, in the shape its configuration parses", () => {
    const [fnArgs] = find(created, "sst.aws.Queue", "Jobs").calls[0]!.args;
    // Every field RunTask needs, from the task's own outputs (stand-ins render them as "<LargeJobs.x>").
    const props = ["cluster", "taskDefinition", "subnets", "securityGroups", "assignPublicIp", "containers"];
    expect(JSON.parse(fnArgs.environment.CAPYDB_TASK)).toEqual(Object.fromEntries(props.map((p) => [p, ref("LargeJobs", p)])));
    expect(Object.keys(taskResourceSchema.shape).sort()).toEqual([...props].sort());
    expect(fnArgs.environment.CAPYDB_TASK_THRESHOLD).toBe(taskThreshold);
    // The worker's own configuration reads both (5 GB = 5 GiB, as pg_size_pretty counts).
    const config = loadConfig({
      CAPYDB_TABLE: "t",
      CAPYDB_QUEUE_URL: "https://sqs.example/q",
      CAPYDB_BUCKET: "b",
      CAPYDB_SECRET_KEY: Buffer.alloc(32).toString("base64"),
      // A deployed value: JSON arrays for the subnets, a boolean for the public IP.
      CAPYDB_TASK: JSON.stringify({
        cluster: "arn:aws:ecs:us-east-1:123456789012:cluster/c",
        taskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/t:1",
        subnets: ["subnet-1"],
        securityGroups: ["sg-1"],
        assignPublicIp: true,
        containers: ["LargeJobs"],
      }),
      CAPYDB_TASK_THRESHOLD: fnArgs.environment.CAPYDB_TASK_THRESHOLD,
    });
    expect(config.taskThresholdBytes).toBe(5 * 1024 ** 3);
    expect(config.task?.subnets).toEqual(["subnet-1"]);
  });
});

describe("the task image (infra/task/Dockerfile)", () => {
  const dockerfile = readFileSync(path.join(repoRoot, task.dockerfile), "utf8");
  const dockerignore = readFileSync(path.join(repoRoot, ".dockerignore"), "utf8");
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
  const dir = mkdtempSync(path.join(tmpdir(), "capydb-image-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** `COPY <src> <dest>` lines of the final stage (not --from: those come from the build stage). */
  const copies = [...finalStage.matchAll(/^COPY (?!--from)(\S+) (\S+)$/gm)].map((m) => ({ src: m[1]!, dest: m[2]! }));
  const envValue = (name: string) => new RegExp(`^ENV[^\\n]*\\b${name}=(\\S+)`, "m").exec(finalStage)?.[1];

  it("puts the layer's tools where CAPYDB_PG_BIN_DIRS points, the worker's path on Lambda", () => {
    const pg = copies.find((c) => c.src.startsWith(pgLayerDir));
    expect(pg, finalStage).toEqual({ src: `${pgLayerDir}/pgsql`, dest: pgBinDir });
    expect(envValue("CAPYDB_PG_BIN_DIRS")).toBe(pgBinDir);
    expect(task.environment.CAPYDB_PG_BIN_DIRS).toBe(pgBinDir);
  });

  it("gives core/pg/pgtools.ts the <dir>/<major>/bin layout it looks for", async () => {
    // prepare: a layer as scripts/build-pg-layer.sh lays it out (pgsql/<major>/bin/{pg_dump,pg_restore}),
    // with this machine's real tools in place of the compiled ones
    const real = await pickPgTools({ major: 15, text: "15" }, []);
    const layerBin = path.join(dir, pgLayerDir, "pgsql", String(real.major), "bin");
    mkdirSync(layerBin, { recursive: true });
    symlinkSync(real.pgDump, path.join(layerBin, "pg_dump"));
    symlinkSync(real.pgRestore, path.join(layerBin, "pg_restore"));
    // act: the Dockerfile's COPY, into a stand-in root filesystem
    const pg = copies.find((c) => c.src.startsWith(pgLayerDir))!;
    const rootfs = path.join(dir, "rootfs");
    cpSync(path.join(dir, pg.src), path.join(rootfs, pg.dest), { recursive: true, verbatimSymlinks: true });
    // assess: the runner, configured as in the image, finds that major there first
    const found = await installedPgTools([path.join(rootfs, envValue("CAPYDB_PG_BIN_DIRS")!)]);
    expect(found[0]).toMatchObject({ major: real.major, pgDump: path.join(rootfs, "/opt/pgsql", String(real.major), "bin", "pg_dump") });
  });

  it("has the PostgreSQL server of every major the service supports, for the recovery instance (point-in-time restores, drills)", () => {
    // A stage compiles the server with the layer's script and pins; the final stage copies it where CAPYDB_PG_BIN_DIRS points.
    const stage = /^FROM \S+ AS server\n([\s\S]*?)\nFROM /m.exec(dockerfile)?.[1];
    expect(stage, dockerfile).toBeDefined();
    const run = /^RUN .*bash \/build-pg-layer\.sh --server-inside (\S+)$/m.exec(stage!);
    expect(run, stage).not.toBeNull();
    expect(stage).toContain("COPY scripts/build-pg-layer.sh /build-pg-layer.sh");
    expect(finalStage).toContain(`COPY --from=server ${run![1]} ${pgBinDir}`);
    // The layer's client tools go on top (the worker's very pg_dump), after the server's tree.
    expect(finalStage.indexOf("COPY --from=server")).toBeLessThan(finalStage.indexOf(`COPY ${pgLayerDir}/pgsql`));
    // What the instance needs besides the binary: the user it runs as (not root), setpriv, every locale.
    expect(finalStage).toMatch(/^RUN dnf install -y [^\n]*glibc-all-langpacks[^\n]*util-linux/m);
    expect(finalStage).toMatch(/echo 'postgres:x:\d+:\d+:[^']*' >> \/etc\/passwd/);

    // The script's server build: the whole tree (server, contrib, ICU), every major of the layer, checked.
    const script = readFileSync(path.join(repoRoot, "scripts/build-pg-layer.sh"), "utf8");
    const fn = /^build_server_inside\(\) \{\n([\s\S]*?)\n\}$/m.exec(script)?.[1];
    expect(fn, "build_server_inside in scripts/build-pg-layer.sh").toBeDefined();
    for (const major of pgMajors) {
      expect(script).toMatch(new RegExp(`^PG${major}_VERSION="\\$\\{PG${major}_VERSION:-${major}\\.\\d+\\}"$`, "m"));
      expect(fn).toMatch(new RegExp(`for version in [^\\n]*"\\$PG${major}_VERSION"`));
    }
    expect(fn).toMatch(/^\s*make -s -j"\$\(nproc\)" install$/m);
    expect(fn).toMatch(/make -s -j"\$\(nproc\)" -C contrib install/);
    expect(fn).toContain("--with-icu");
    expect(fn).toMatch(/for tool in postgres pg_verifybackup pg_basebackup pg_receivewal pg_dump pg_restore; do/);
    expect(script).toMatch(/^if \[ "\$\{1:-\}" = "--server-inside" \]; then\n\s+build_server_inside "\$2"/m);
  });

  it("gives core/pg/recovery.ts the <dir>/<major>/bin/postgres layout it looks for", async () => {
    // prepare: this machine's real server where the image's server stage leaves one (<out>/<major>/bin/postgres)
    const real = await pickPgTools({ major: 15, text: "15" }, []);
    const local = await findServerBinary(real.major).catch(() => undefined);
    expect(local, "a PostgreSQL server on this machine (the tests' own)").toBeDefined();
    const rootfs = path.join(dir, "server-rootfs");
    const bin = path.join(rootfs, pgBinDir, String(real.major), "bin");
    mkdirSync(bin, { recursive: true });
    symlinkSync(local!, path.join(bin, "postgres"));
    // assess: the recovery instance, configured as in the image, takes that one first
    const dirs = [path.join(rootfs, envValue("CAPYDB_PG_BIN_DIRS")!)];
    expect(await findServerBinary(real.major, dirs)).toBe(path.join(bin, "postgres"));
    expect(hasServerBinary(dirs)).toBe(true);
    expect(hasServerBinary([path.join(dir, "nothing-here")])).toBe(hasServerBinary([]));
  });

  it("runs functions/task.ts, bundled in the build stage", () => {
    expect(taskEntry).toBe(`functions/${task.entry}.ts`);
    expect(dockerfile).toMatch(/^RUN node --import tsx scripts\/build-task\.ts (\S+)$/m);
    const out = /scripts\/build-task\.ts (\S+)$/m.exec(dockerfile)![1]!;
    expect(finalStage).toContain(`COPY --from=build ${out} /var/task/index.mjs`);
    expect(finalStage).toMatch(/^ENTRYPOINT \["node", "\/var\/task\/index\.mjs"\]$/m);
    expect(taskBundle).toBe("dist/task/index.mjs");
  });

  it("has every file it copies in its build context (.dockerignore)", () => {
    const allowed = dockerignore
      .split("\n")
      .filter((l) => l.startsWith("!"))
      .map((l) => l.slice(1).replace(/\/$/, ""));
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)].flatMap((m) => m[1]!.split(" ").slice(0, -1));
    expect(sources.length).toBeGreaterThan(3);
    for (const src of sources) {
      const clean = src.replace(/^\.\//, "");
      expect(
        allowed.some((a) => clean === a || clean.startsWith(`${a}/`)),
        `${src} is excluded by .dockerignore`,
      ).toBe(true);
    }
  });
});
