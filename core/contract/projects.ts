import { z } from "../zod.ts";
import { at } from "./shared.ts";

export const projectEnvironments = ["production", "non_production"] as const;

/** The Project as the API shows it (SPEC section 5): exactly these fields. */
export const projectSchema = z.object({
  id: z.string(),
  organization_id: z.string(),
  name: z.string(),
  slug: z.string(),
  environment: z.enum(projectEnvironments),
  /** The server's major version ("15"), probed when the project is created; null when unknown. */
  postgres_version: z.string().nullable(),
  database_name: z.string(),
  state: z.literal("ready"),
  region: z.string().nullable(),
  plan: z.string(),
  always_on: z.boolean(),
  runtime_status: z.string(),
  storage_limit_bytes: z.number().int(),
  max_connections: z.number().int(),
  direct_port: z.number().int(),
  pooled_port: z.number().int(),
  role_name: z.string().nullable(),
  public_host: z.string().nullable(),
  ssl_mode: z.string().nullable(),
  statement_timeout: z.string().nullable(),
  idle_transaction_timeout: z.string().nullable(),
  last_error: z.string().nullable(),
  latest_job_id: z.string().nullable(),
  primary_instance_id: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export const Project = projectSchema.extend({ created_at: at(), updated_at: at() }).openapi("Project");

export const GetProjectResponse = z.object({ project: Project });

export const ListProjectsResponse = z.object({ projects: z.array(Project) });
