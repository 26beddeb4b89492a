import { formatUrl } from "@aws-sdk/core/util";
import { S3RequestPresigner } from "@aws-sdk/s3-request-presigner";
import { extendedEncodeURIComponent, HttpRequest } from "@smithy/core/protocols";
import type { AwsCredentialIdentityProvider, ChecksumConstructor, HashConstructor } from "@smithy/types";

/** One S3 GET to sign: the object, the response overrides S3 applies, and the validity. */
export interface PresignGetInput {
  bucket: string;
  key: string;
  /** Query parameters signed into the URL (e.g. `response-content-disposition`). */
  query?: Record<string, string>;
  expiresIn: number;
  signingDate: Date;
}

/** Returns a presigned `GET` URL of an S3 object. */
export type PresignGet = (input: PresignGetInput) => Promise<string>;

export interface PresignSettings {
  region: string;
  /** Endpoint override (the local S3 stand-in): path-style URLs under it. Absent on AWS. */
  endpoint?: string;
  /** The credential chain the other clients resolved (the Lambda role's, locally fixed ones). */
  credentials: AwsCredentialIdentityProvider;
  sha256: ChecksumConstructor | HashConstructor;
}

/**
 * Signs S3 GET URLs with the SDK's own S3 presigner (`S3RequestPresigner`: SigV4, unsigned
 * payload, the `X-Amz-*` query parameters), without the S3 client: the API only ever signs one
 * kind of request, and `@aws-sdk/client-s3` (its 100+ commands, XML protocol and event streams)
 * would be most of its bundle's AWS code. The request is the one the client builds for
 * GetObject: the key escaped segment by segment as S3 expects; virtual-hosted style on AWS, path
 * style under an endpoint override (as `forcePathStyle` does locally) and for a bucket name with
 * dots (a virtual host would not match S3's TLS certificate).
 */
export function createPresignGet(settings: PresignSettings): PresignGet {
  const presigner = new S3RequestPresigner({ region: settings.region, credentials: settings.credentials, sha256: settings.sha256 });
  const endpoint = settings.endpoint ? new URL(settings.endpoint) : undefined;
  return async ({ bucket, key, query = {}, expiresIn, signingDate }) => {
    const objectPath = key.split("/").map(extendedEncodeURIComponent).join("/");
    const base =
      endpoint ?? new URL(bucket.includes(".") ? `https://s3.${settings.region}.amazonaws.com` : `https://${bucket}.s3.${settings.region}.amazonaws.com`);
    const pathStyle = endpoint !== undefined || bucket.includes(".");
    const prefix = base.pathname.replace(/\/$/, "");
    const request = new HttpRequest({
      method: "GET",
      protocol: base.protocol,
      hostname: base.hostname,
      port: base.port ? Number(base.port) : undefined,
      path: pathStyle ? `${prefix}/${extendedEncodeURIComponent(bucket)}/${objectPath}` : `${prefix}/${objectPath}`,
      query: { ...query },
      headers: {},
    });
    return formatUrl(await presigner.presign(request, { expiresIn, signingDate }));
  };
}
