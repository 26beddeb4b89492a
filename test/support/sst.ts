import { createCipheriv, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";

/**
 * What `sst deploy` does for a Lambda function's links, for tests: the links' properties as JSON
 * (`{ "<Name>": { ...properties, "type": "<sst type>" } }`) sealed with AES-256-GCM under a fresh
 * 32-byte key with a nonce of 12 zero bytes and the tag appended, written to `resource.enc` in the
 * function's directory (SST's pkg/runtime `Build`), and the environment SST gives the function
 * (.sst/platform/src/components/aws/function.ts, `normalizeEnvironment`): `SST_RESOURCE_App`,
 * `SST_KEY`, `SST_KEY_FILE` and nothing else of the links.
 */
export function sealSstLinks(
  dir: string,
  links: Record<string, Record<string, unknown>>,
  app = { name: "capydb-backups", stage: "test" },
): Record<string, string> {
  const key = randomBytes(32);
  const cipher = createCipheriv("aes-256-gcm", key, Buffer.alloc(12, 0));
  const sealed = Buffer.concat([cipher.update(JSON.stringify(links), "utf8"), cipher.final(), cipher.getAuthTag()]);
  writeFileSync(path.join(dir, "resource.enc"), sealed);
  return { SST_RESOURCE_App: JSON.stringify(app), SST_KEY: key.toString("base64"), SST_KEY_FILE: "resource.enc" };
}

/** SST's link types, as `Link.build` records them beside the properties. */
export const sstLinkType = {
  Table: "sst.aws.Dynamo",
  Jobs: "sst.aws.Queue",
  JobsDlq: "sst.aws.Queue",
  Deliveries: "sst.aws.Queue",
  Backups: "sst.aws.Bucket",
  secret: "sst.sst.Secret",
} as const;
