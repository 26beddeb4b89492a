import { z } from "../../../zod.ts";
import { exportSchema } from "../../../exports/exports.ts";
import { Job } from "../jobs/schema.ts";
import { at, listQuery, ProjectParams, timestamp } from "../shared.ts";

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
