import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimJob, completeJob, failJob, getJobItem, retryJob, type JobItem } from "../../core/jobs/jobs.ts";
import { body, expectShape } from "../support/spec.ts";

let env: TestEnv;
let tenant: Tenant;
let key: string;

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "retries_db" });
  key = await tenant.key();
});
afterAll(async () => env?.cleanup());

/** A backup requested through the API: its job, as stored. */
async function requestBackup(): Promise<JobItem> {
  const res = await env.app().request(`/v1/projects/${tenant.projectId}/backups`, { method: "POST", headers: { "x-api-key": key } });
  expect(res.status, await res.clone().text()).toBe(202);
  return (await getJobItem(env.deps, (await body(res)).job.id))!;
}
const jobAsSeen = async (id: string) => {
  const res = await env.app().request(`/v1/jobs/${id}`, { headers: { "x-api-key": key } });
  expect(res.status, await res.clone().text()).toBe(200);
  const { job } = await body(res);
  expectShape("Job", job, expect);
  return job;
};

/** One attempt by a worker: claim, then `end` it. */
async function attempt(job: JobItem, end: (claimed: JobItem) => Promise<JobItem | undefined>): Promise<JobItem> {
  const claimed = await claimJob(env.deps, (await getJobItem(env.deps, job.id))!, "worker-1", 120_000);
  expect(claimed, "claimable").toBeDefined();
  const after = await end(claimed!);
  expect(after, "transition").toBeDefined();
  return after!;
}

describe("retry_classification over a job's attempts", () => {
  it("a job that fails once (transient) and completes on its second attempt shows retry_classification null, no error, attempts 2", async () => {
    const job = await requestBackup();

    // The first attempt fails transiently: the job waits for its retry and says why.
    await attempt(job, (c) =>
      retryJob(env.deps, c, "Could not reach the database server (connection refused)", new Date(), { last_stderr: "connection refused" }),
    );
    expect(await jobAsSeen(job.id)).toMatchObject({
      state: "pending",
      attempts: 1,
      retry_classification: "transient",
      error: "Could not reach the database server (connection refused)",
    });

    // The second attempt completes.
    await attempt(job, (c) => completeJob(env.deps, c, { last_exit_code: 0, last_stdout: "", last_stderr: "" }));
    const done = await jobAsSeen(job.id);
    expect(done).toMatchObject({ state: "completed", attempts: 2, retry_classification: null, error: null, last_exit_code: 0 });
    // The project's job list shows the same.
    const listed = (await body(await env.app().request(`/v1/projects/${tenant.projectId}/jobs`, { headers: { "x-api-key": key } }))).jobs.find(
      (j: { id: string }) => j.id === job.id,
    );
    expect(listed).toMatchObject({ state: "completed", attempts: 2, retry_classification: null });
  });

  it("a job that fails transiently and then for good keeps the classification of the failure that ended it", async () => {
    const job = await requestBackup();
    await attempt(job, (c) => retryJob(env.deps, c, "timed out", new Date()));
    await attempt(job, (c) => failJob(env.deps, c, 'password authentication failed for user "app"', "permanent"));
    expect(await jobAsSeen(job.id)).toMatchObject({
      state: "failed",
      attempts: 2,
      retry_classification: "permanent",
      error: expect.stringMatching(/password authentication failed/),
    });
  });
});
