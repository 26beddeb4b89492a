import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { describe, expect, it } from "vitest";
import { createAwsClientsWithoutS3 } from "../../core/aws/clients.ts";
import { createPresignGet } from "../../core/aws/presign.ts";

/**
 * The API signs download URLs with the SDK's S3 presigner alone (core/aws/presign.ts), without
 * the S3 client. The URL must be the one the full client would sign (the same signature for the
 * same request, credentials and time), on AWS and under the local endpoint, for keys that need
 * escaping too: S3 checks exactly this signature.
 */
const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: "session/token+=" };
const signingDate = new Date("2026-11-30T01:02:03Z");
const cases = [
  {
    name: "AWS, virtual-hosted",
    endpoint: undefined,
    bucket: "capydb-backups-prod-backupsbucket-abc123",
    key: "backups/prj_01kbq2z8x7y6w5v4t3s2r1q0pa/bkp_01kbq2z8x7y6w5v4t3s2r1q0pa.dump",
  },
  { name: "AWS, a bucket with dots (path style)", endpoint: undefined, bucket: "backups.example.com", key: "exports/exp 1/file+name (copy)!.dump" },
  { name: "local endpoint, path style", endpoint: "http://127.0.0.1:4566", bucket: "capydb-local", key: "backups/a b/ü*~'.dump" },
];

const sorted = (u: string) => {
  const url = new URL(u);
  url.searchParams.sort();
  return url.toString();
};

describe("createPresignGet: S3 GET URLs without the S3 client", () => {
  it.each(cases)("$name: the same URL and signature as getSignedUrl with the S3 client", async ({ endpoint, bucket, key }) => {
    const region = "eu-west-1";
    const query = { "response-content-disposition": `attachment; filename="bkp_1.dump"`, "response-content-type": "application/octet-stream" };
    // As core/aws/clients.ts configured the S3 client that signed downloads before (no checksum mode).
    const client = new S3Client({
      region,
      endpoint,
      forcePathStyle: endpoint !== undefined,
      credentials,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    const expected = await getSignedUrl(
      client,
      new GetObjectCommand({
        Bucket: bucket,
        Key: key,
        ResponseContentDisposition: query["response-content-disposition"],
        ResponseContentType: query["response-content-type"],
      }),
      { expiresIn: 900, signingDate },
    );
    const sign = createPresignGet({ region, endpoint, credentials: async () => credentials, sha256: client.config.sha256 });
    // act
    // The client adds (and signs) `x-id=GetObject`, which S3 ignores; the same request needs it too.
    const actual = await sign({ bucket, key, query: { ...query, "x-id": "GetObject" }, expiresIn: 900, signingDate });
    // assess
    expect(sorted(actual)).toBe(sorted(expected));
    expect(new URL(actual).searchParams.get("X-Amz-Signature")).toBe(new URL(expected).searchParams.get("X-Amz-Signature"));
    expect(new URL(actual).searchParams.get("X-Amz-Security-Token")).toBe(credentials.sessionToken);
  });

  it("the API's clients sign with the credentials and region the DynamoDB client resolved", async () => {
    const clients = createAwsClientsWithoutS3({ region: "us-east-2", endpoint: "http://127.0.0.1:4566" });
    expect(clients).not.toHaveProperty("s3");
    const url = new URL(await clients.presignGet({ bucket: "b", key: "k.dump", expiresIn: 60, signingDate }));
    expect(url.origin + url.pathname).toBe("http://127.0.0.1:4566/b/k.dump");
    // core/aws/clients.ts gives the local stand-ins the fixed "local" credentials.
    expect(url.searchParams.get("X-Amz-Credential")).toBe("local/20261130/us-east-2/s3/aws4_request");
    expect(url.searchParams.get("X-Amz-Expires")).toBe("60");
  });
});
