import { z } from "../zod.ts";
import { Job } from "./jobs.ts";
import { at, listQuery, ProjectParams, timestamp } from "./shared.ts";

export const exportStates = ["pending", "running", "completed", "failed", "expired"] as const;

/** The Export as the API shows it (SPEC section 5): exactly these fields. */
export const exportSchema = z.object({
  id: z.string(),
  project_id: z.string(),
  database_name: z.string(),
  state: z.enum(exportStates),
  size_bytes: z.number().int(),
  created_at: z.string(),
  expires_at: z.string(),
});

export const Export = exportSchema
  .extend({
    created_at: at(),
    expires_at: z.string().openapi({ ...timestamp, description: "When the dispatcher deletes the dump (the export then reads `expired`)." }),
  })
  .openapi("Export");

export const ExportParams = ProjectParams.extend({
  exportID: z
    .string()
    .min(1)
    .openapi({ param: { name: "exportID", in: "path" }, description: "Export id." }),
});

export const CreateExportResponse = z.object({ export_id: z.string(), job: Job });

export const ListExportsQuery = listQuery(1000, 100);

export const ListExportsResponse = z.object({ exports: z.array(Export) });
