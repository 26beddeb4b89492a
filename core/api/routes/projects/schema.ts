import { z } from "../../../zod.ts";
import { projectSchema } from "../../../orgs/orgs.ts";
import { at } from "../shared.ts";

export const Project = projectSchema.extend({ created_at: at(), updated_at: at() }).openapi("Project");

export const GetProjectResponse = z.object({ project: Project });

export const ListProjectsResponse = z.object({ projects: z.array(Project) });
