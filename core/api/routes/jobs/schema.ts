import { z } from "../../../zod.ts";
import { jobSchema } from "../../../jobs/jobs.ts";
import { at, atOrNull, listQuery } from "../shared.ts";

export const Job = jobSchema
  .extend({ claimed_at: atOrNull(), started_at: atOrNull(), completed_at: atOrNull(), created_at: at(), updated_at: at() })
  .openapi("Job");

export const GetJobResponse = z.object({ job: Job });

export const ListJobsQuery = listQuery(100, 25);

export const ListJobsResponse = z.object({ jobs: z.array(Job) });
