import { z } from "../zod.ts";

/** The events a webhook endpoint can subscribe to (SPEC section 5). */
export const eventTypes = [
  "backup.completed",
  "job.completed",
  "job.failed",
  "restore.completed",
  "preview.ready",
  "preview.deleted",
  "export.completed",
] as const;
export const eventTypeSchema = z.enum(eventTypes);
export type EventType = z.infer<typeof eventTypeSchema>;
