import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, type Tenant, type TestEnv } from "../support/env.ts";
import { body, expectShape } from "../support/spec.ts";
import { ListBackupsQuery } from "../../core/contract/backups.ts";
import { ListJobsQuery } from "../../core/contract/jobs.ts";

let env: TestEnv;
let tenant: Tenant;
let key: string;
const jobIds: string[] = [];

beforeAll(async () => {
  env = await createTestEnv();
  tenant = await env.seedTenant({ database: "jobs_db" });
  key = await tenant.key();
  for (let i = 0; i < 30; i++) {
    const res = await env.app().request(`/v1/projects/${tenant.projectId}/backups`, { method: "POST", headers: { "x-api-key": key } });
    jobIds.push((await body(res)).job.id);
  }
});
afterAll(async () => env?.cleanup());

const list = (query = "") => env.app().request(`/v1/projects/${tenant.projectId}/jobs${query}`, { headers: { "x-api-key": key } });

describe("GET /v1/projects/{projectID}/jobs", () => {
  it("answers 25 jobs by default, newest first, each with exactly SPEC's fields", async () => {
    const res = await list();
    expect(res.status).toBe(200);
    const { jobs } = await body(res);
    expect(jobs).toHaveLength(25);
    expect(jobs.map((j: { id: string }) => j.id)).toEqual([...jobIds].reverse().slice(0, 25));
    for (const j of jobs) expectShape("Job", j, expect);
  });

  it("honours limit 1..100, clamps a larger one to 100 (as CapyDB's clients send), and refuses others naming the parameter", async () => {
    expect((await body(await list("?limit=1"))).jobs).toHaveLength(1);
    expect((await body(await list("?limit=100"))).jobs).toHaveLength(30);
    for (const large of ["101", "5000"]) {
      const res = await list(`?limit=${large}`);
      expect(res.status, await res.clone().text()).toBe(200);
      expect((await body(res)).jobs).toHaveLength(30);
    }
    expect(ListJobsQuery.parse({ limit: "5000" }).limit).toBe(100);
    expect(ListBackupsQuery.parse({ limit: "5000" }).limit).toBe(1000);
    expect(ListJobsQuery.parse({}).limit).toBe(25);
    for (const bad of ["0", "-3", "abc", "2.5"]) {
      const res = await list(`?limit=${bad}`);
      expect(res.status, bad).toBe(400);
      expect((await body(res)).error).toMatch(/^limit/);
    }
  });

  it("pages through everything with x-next-cursor", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: Response = await list(`?limit=7${cursor ? `&cursor=${cursor}` : ""}`);
      seen.push(...(await body(res)).jobs.map((j: { id: string }) => j.id));
      cursor = res.headers.get("x-next-cursor");
    } while (cursor);
    expect(seen).toEqual([...jobIds].reverse());
  });

  it("lists [] for a project without jobs", async () => {
    const other = await env.seedTenant({ database: "jobs_other" });
    const res = await env.app().request(`/v1/projects/${other.projectId}/jobs`, { headers: { "x-api-key": await other.key() } });
    expect(await body(res)).toEqual({ jobs: [] });
  });
});

describe("GET /v1/jobs/{jobID}", () => {
  it("answers the job", async () => {
    const res = await env.app().request(`/v1/jobs/${jobIds[0]}`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    const { job } = await body(res);
    expectShape("Job", job, expect);
    expect(job.id).toBe(jobIds[0]);
  });

  it("answers 404 for an unknown or malformed job id", async () => {
    for (const id of ["job_01m8bbe8j3dxgy84my79zmzhg3", "nope", "job_%27%3B--"]) {
      const res = await env.app().request(`/v1/jobs/${id}`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status, id).toBe(404);
      expect(await body(res)).toEqual({ error: expect.stringMatching(/not found/) });
    }
  });
});
