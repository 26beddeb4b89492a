import { describe, expect, it } from "vitest";
import { task } from "sst/aws/task";
import { runErrorReason } from "../../core/tasks/aws.ts";
import { parseSize } from "../../core/config.ts";
import { readTaskInput } from "../../core/tasks/launcher.ts";

describe("the Fargate launcher's failure reasons (ECS answers as the SDK receives them)", () => {
  it("names ECS's error type and message when RunTask is refused", async () => {
    const res = new Response(JSON.stringify({ __type: "AccessDeniedException", message: "User is not authorized to perform: ecs:RunTask" }), { status: 400 });
    expect(await runErrorReason(new task.RunError(res))).toBe(
      "ECS refused RunTask (HTTP 400: AccessDeniedException: User is not authorized to perform: ecs:RunTask)",
    );
  });

  it("says no task started when RunTask answered 200 with failures (no capacity)", async () => {
    const res = new Response(JSON.stringify({ tasks: [], failures: [{ reason: "Capacity is unavailable at this time." }] }), { status: 200 });
    await res.json(); // the SDK has read the body before throwing
    expect(await runErrorReason(new task.RunError(res))).toMatch(/^ECS started no task .*Fargate capacity/);
  });

  it("passes other errors on (no credentials, network)", async () => {
    expect(await runErrorReason(new Error("No AWS credentials found"))).toBe("could not call ECS: No AWS credentials found");
  });
});

describe("task settings", () => {
  it("reads sizes in binary units and refuses what is not a size", () => {
    expect(parseSize("5 GB")).toBe(5 * 1024 ** 3);
    expect(parseSize("1MB")).toBe(1024 ** 2);
    expect(parseSize("512 MiB")).toBe(512 * 1024 ** 2);
    expect(parseSize("1234")).toBe(1234);
    expect(parseSize("five gigs")).toBeUndefined();
  });

  it("reads the task's job from its environment, naming a missing or bad variable", () => {
    const ok = { CAPYDB_JOB_ID: "job_01m8mrs3jp49crkj9heq3454mp", CAPYDB_JOB_ATTEMPT: "2", CAPYDB_LAUNCHED_BY: "launch:worker-1" };
    expect(readTaskInput(ok)).toEqual({ jobId: ok.CAPYDB_JOB_ID, attempt: 2, launchedBy: "launch:worker-1", leaseMs: 600_000, heartbeatMs: 60_000 });
    expect(() => readTaskInput({ ...ok, CAPYDB_JOB_ID: undefined })).toThrow("missing setting CAPYDB_JOB_ID");
    expect(() => readTaskInput({ ...ok, CAPYDB_JOB_ATTEMPT: "x" })).toThrow(/invalid setting CAPYDB_JOB_ATTEMPT/);
  });
});

describe("the threshold setting", () => {
  const base = { CAPYDB_TABLE: "t", CAPYDB_QUEUE_URL: "https://sqs.example/q", CAPYDB_BUCKET: "b", CAPYDB_SECRET_KEY: Buffer.alloc(32).toString("base64") };
  it("defaults to 5 GB and refuses what is not a size, naming the variable", async () => {
    const { loadConfig } = await import("../../core/config.ts");
    expect(loadConfig(base).taskThresholdBytes).toBe(5 * 1024 ** 3);
    expect(loadConfig({ ...base, CAPYDB_TASK_THRESHOLD: "1MB" }).taskThresholdBytes).toBe(1024 ** 2);
    expect(() => loadConfig({ ...base, CAPYDB_TASK_THRESHOLD: "five gigs" })).toThrow(
      "invalid setting CAPYDB_TASK_THRESHOLD: must be a size such as 5 GB, 500 MB or a number of bytes",
    );
    expect(() => loadConfig({ ...base, CAPYDB_TASK: "{" })).toThrow("invalid setting CAPYDB_TASK: not JSON");
  });
});
