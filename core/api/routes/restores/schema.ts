import { z } from "@hono/zod-openapi";
import { restoreRequest } from "../../../restores/restores.ts";
import { Job } from "../jobs/schema.ts";

const field = restoreRequest.shape;
export const CreateRestoreRequest = restoreRequest
  .extend({
    backup_key: field.backup_key.meta({ description: "Source: a completed backup of this project, by its key." }),
    restore_point_id: field.restore_point_id.meta({ description: "Source: an active restore point." }),
    restore_time: field.restore_time.meta({ description: "Source: a point in time (RFC 3339). Refused: no WAL archive is kept." }),
    target_kind: field.target_kind.meta({ description: "Default new_preview. project: restore over the project's database (approval_token required; refused for production projects)." }),
    preview_id: field.preview_id.meta({ description: "The preview to restore into (target_kind preview)." }),
    preview_name: field.preview_name.meta({ description: "Name of the new preview (target_kind new_preview)." }),
    ttl_hours: field.ttl_hours.meta({ description: "Lifetime of the new preview (1-168, default 24)." }),
    recreate: field.recreate.meta({ description: "Empty the target preview first (else a preview that holds tables is a 409)." }),
    approval_token: field.approval_token.meta({ description: "Required for target_kind project: an unused project.restore_overwrite approval of this project." }),
  })
  .openapi("CreateRestoreRequest");

export const CreateRestoreResponse = z.object({ job: Job });
