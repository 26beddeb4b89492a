import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { errorText, mapSettled } from "../concurrency.ts";
import { keys } from "../db/keys.ts";
import { queryAll, updateItem } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { exportItem } from "./exports.ts";

export interface ExportSweepOptions {
  /** Expired exports handled per tick (oldest expiry first); the rest wait for the next tick. */
  limit: number;
  concurrency: number;
}

export const defaultExportSweepOptions: ExportSweepOptions = { limit: 200, concurrency: 8 };

export interface ExportSweepReport {
  /** Expired exports read from the index. */
  read: number;
  deleted: number;
  /** The object could not be deleted; retried on the next tick. */
  failed: number;
}

const isMissingObject = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
};

/**
 * Deletes the dumps of completed exports past `expires_at` and marks them `expired` (the record
 * stays listed). Read through the sparse expiry index (gsi2 EXPEXP / <expires_at>#<exp>), never a
 * scan. Exports have no safety rule and no delete jobs: an export is a copy the customer already
 * had seven days to take. Idempotent: a missing object counts as deleted, and the state change
 * is conditional on the export still being completed and indexed.
 */
export async function sweepExpiredExports(deps: Deps, opts: ExportSweepOptions = defaultExportSweepOptions): Promise<ExportSweepReport> {
  const now = deps.now();
  const candidates = await queryAll(
    deps,
    exportItem,
    {
      IndexName: "gsi2",
      KeyConditionExpression: "gsi2pk = :p AND gsi2sk < :now",
      ExpressionAttributeValues: { ":p": keys.exportExpiryIndex, ":now": `${iso(now)}#` },
      Limit: opts.limit,
    },
    opts.limit,
  );
  const report: ExportSweepReport = { read: candidates.length, deleted: 0, failed: 0 };
  const results = await mapSettled(candidates, opts.concurrency, async (exp) => {
    try {
      await deps.s3.send(new DeleteObjectCommand({ Bucket: deps.bucket, Key: exp.export_key }));
    } catch (err) {
      if (!isMissingObject(err)) throw err;
    }
    const at = iso(deps.now());
    try {
      await updateItem(deps, exportItem, {
        Key: keys.export(exp.project_id, exp.id),
        UpdateExpression: "SET #state = :expired, updated_at = :at, artifact_deleted_at = :at REMOVE gsi2pk, gsi2sk",
        ConditionExpression: "#state = :completed AND gsi2pk = :p",
        ExpressionAttributeNames: { "#state": "state" },
        ExpressionAttributeValues: { ":expired": "expired", ":completed": "completed", ":at": at, ":p": keys.exportExpiryIndex },
      });
    } catch (err) {
      // Another dispatcher expired it first.
      if (!(err instanceof AppError && err.code === "conflict")) throw err;
    }
  });
  results.forEach((r, i) => {
    if (r.status === "fulfilled") report.deleted++;
    else {
      report.failed++;
      deps.log.error("exports: could not delete an expired export; retrying next tick", { export_id: candidates[i]!.id, error: errorText(r.reason) });
    }
  });
  return report;
}
