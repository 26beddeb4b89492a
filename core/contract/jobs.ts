import { z } from "../zod.ts";
import { at, atOrNull, listQuery } from "./shared.ts";

/** A job's states; which may follow which is core/jobs/transitions.ts's table. */
export const jobStates = ["pending", "running", "completed", "failed"] as const;

/** The Job as the API shows it (SPEC section 1): exactly these fields. */
export const jobSchema = z.object({
  id: z.string(),
  organization_id: z.string(),
  project_id: z.string(),
  cluster_id: z.string(),
  preview_database_id: z.string().nullable(),
  type: z.string(),
  state: z.enum(jobStates),
  attempts: z.number().int(),
  max_attempts: z.number().int(),
  claimed_at: z.string().nullable(),
  claimed_by: z.string().nullable(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  locked_resource: z.string().nullable(),
  retry_classification: z.string().nullable(),
  last_exit_code: z.number().int().nullable(),
  last_stdout: z.string().nullable(),
  last_stderr: z.string().nullable(),
  error: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const Job = jobSchema
  .extend({ claimed_at: atOrNull(), started_at: atOrNull(), completed_at: atOrNull(), created_at: at(), updated_at: at() })
  .openapi("Job");

export const GetJobResponse = z.object({ job: Job });

export const ListJobsQuery = listQuery(100, 25);

export const ListJobsResponse = z.object({ jobs: z.array(Job) });
