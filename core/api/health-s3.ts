import { HeadBucketCommand } from "@aws-sdk/client-s3";
import type { Deps } from "../deps.ts";
import type { HealthCheck } from "./health.ts";

/**
 * The bucket check, for an API that runs beside an S3 client (the local stack, tests). Kept out
 * of core/api/health.ts so the deployed API, which has no S3 client, does not bundle one.
 */
export function s3HealthCheck(deps: Pick<Deps, "s3" | "bucket">): HealthCheck {
  return async () => {
    await deps.s3.send(new HeadBucketCommand({ Bucket: deps.bucket }));
  };
}
