import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../core/config.ts";
import { loadConsoleOptions } from "../core/console/config.ts";
import { sealSstLinks, sstLinkType } from "./support/sst.ts";

const key = Buffer.alloc(32, 7).toString("base64");
const base = {
  CAPYDB_TABLE: "t",
  CAPYDB_QUEUE_URL: "http://sqs.local/000/q",
  CAPYDB_BUCKET: "b",
  CAPYDB_SECRET_KEY: key,
};

describe("configuration", () => {
  it("parses the environment, with defaults", () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({ region: "us-east-1", table: "t", bucket: "b", pgBinDirs: [], logLevel: "INFO", clerk: undefined, verifyClusterId: undefined });
  });

  it("keeps exports 7 days unless CAPYDB_EXPORT_RETENTION_DAYS says otherwise (1-365)", () => {
    expect(loadConfig(base).exportRetentionDays).toBe(7);
    expect(loadConfig({ ...base, CAPYDB_EXPORT_RETENTION_DAYS: "3" }).exportRetentionDays).toBe(3);
    expect(() => loadConfig({ ...base, CAPYDB_EXPORT_RETENTION_DAYS: "0" })).toThrow(/^invalid setting CAPYDB_EXPORT_RETENTION_DAYS/);
    expect(() => loadConfig({ ...base, CAPYDB_EXPORT_RETENTION_DAYS: "a week" })).toThrow(/^invalid setting CAPYDB_EXPORT_RETENTION_DAYS/);
  });

  it("names the first missing setting in one line", () => {
    expect(() => loadConfig({ ...base, CAPYDB_TABLE: undefined })).toThrow(/^missing setting CAPYDB_TABLE$/);
    expect(() => loadConfig({ ...base, CAPYDB_BUCKET: "" })).toThrow(/^missing setting CAPYDB_BUCKET$/);
  });

  it("names a malformed setting and says what is wrong", () => {
    expect(() => loadConfig({ ...base, CAPYDB_SECRET_KEY: "short" })).toThrow(/^invalid setting CAPYDB_SECRET_KEY: must be 32 bytes/);
    expect(() => loadConfig({ ...base, CAPYDB_QUEUE_URL: "not a url" })).toThrow(/^invalid setting CAPYDB_QUEUE_URL/);
    expect(() => loadConfig({ ...base, LOG_LEVEL: "chatty" })).toThrow(/^invalid setting LOG_LEVEL/);
    expect(() => loadConfig({ ...base, CAPYDB_VERIFY_CLUSTER_ID: "db1" })).toThrow(/^invalid setting CAPYDB_VERIFY_CLUSTER_ID: must be a cluster id/);
    expect(() => loadConfig({ ...base, CLERK_ISSUER: "https://clerk.example" })).toThrow(/^missing setting CLERK_JWKS_URL$/);
  });

  it("reads deployed resource names from SST's links", () => {
    const c = loadConfig({
      SST_RESOURCE_Table: JSON.stringify({ name: "prod-table" }),
      SST_RESOURCE_Jobs: JSON.stringify({ url: "https://sqs.us-east-1.amazonaws.com/1/jobs" }),
      SST_RESOURCE_JobsDlq: JSON.stringify({ url: "https://sqs.us-east-1.amazonaws.com/1/dlq" }),
      SST_RESOURCE_Backups: JSON.stringify({ name: "prod-bucket" }),
      SST_RESOURCE_ClusterSecretKey: JSON.stringify({ value: key }),
      SST_RESOURCE_ClerkJwksUrl: JSON.stringify({ value: "" }),
      AWS_REGION: "eu-west-1",
    });
    expect(c).toMatchObject({
      region: "eu-west-1",
      table: "prod-table",
      bucket: "prod-bucket",
      dlqUrl: "https://sqs.us-east-1.amazonaws.com/1/dlq",
      clerk: undefined,
    });
  });

  describe("a Lambda function's links, sealed in resource.enc as SST deploys them", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "capydb-sst-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const links = {
      Table: { name: "prod-table", type: sstLinkType.Table },
      Jobs: { url: "https://sqs.us-east-1.amazonaws.com/1/jobs", type: sstLinkType.Jobs },
      Backups: { name: "prod-bucket", type: sstLinkType.Backups },
      ClusterSecretKey: { value: key, type: sstLinkType.secret },
      ClerkJwksUrl: { value: "https://clerk.example/jwks", type: sstLinkType.secret },
      ClerkIssuer: { value: "https://clerk.example", type: sstLinkType.secret },
    };
    // Only what SST sets (no SST_RESOURCE_Table & co.), plus what the Lambda runtime sets.
    const sstEnv = sealSstLinks(dir, links);
    const lambdaEnv = { ...sstEnv, AWS_REGION: "eu-west-1", LAMBDA_TASK_ROOT: dir };

    it("reads the names, the key and the Clerk settings from the file", () => {
      expect(Object.keys(sstEnv).sort()).toEqual(["SST_KEY", "SST_KEY_FILE", "SST_RESOURCE_App"]);
      const c = loadConfig(lambdaEnv);
      expect(c).toMatchObject({ region: "eu-west-1", table: "prod-table", queueUrl: links.Jobs.url, bucket: "prod-bucket", secretKey: key });
      expect(c.clerk).toEqual({ jwksUrl: "https://clerk.example/jwks", issuer: "https://clerk.example", authorizedParties: [] });
      expect(loadConsoleOptions(lambdaEnv)).toEqual({ clerk: true });
      // A function's own `environment` (plain names without permissions) still counts.
      expect(loadConfig({ ...lambdaEnv, CAPYDB_DELIVERY_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/1/d" }).deliveryQueueUrl).toBe(
        "https://sqs.us-east-1.amazonaws.com/1/d",
      );
    });

    it("is the format the sst package's own Resource reader opens", () => {
      // In a process of its own: `Resource` caches the first environment it sees.
      const out = execFileSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `const { Resource } = await import(${JSON.stringify(import.meta.resolve("sst/resource"))}); console.log(JSON.stringify([Resource.Table.name, Resource.ClusterSecretKey.value]))`,
        ],
        {
          cwd: dir,
          env: { ...sstEnv, PATH: process.env.PATH },
        },
      ).toString();
      expect(JSON.parse(out)).toEqual(["prod-table", key]);
    });

    it("refuses a key that does not open the file, or a missing file, naming the setting and not the content", () => {
      const wrongKey = Buffer.alloc(32, 1).toString("base64");
      expect(() => loadConfig({ ...lambdaEnv, SST_KEY: wrongKey })).toThrow(/^invalid setting SST_KEY_FILE: .*resource\.enc does not open with SST_KEY$/);
      expect(() => loadConfig({ ...lambdaEnv, SST_KEY_FILE: "missing.enc" })).toThrow(/^invalid setting SST_KEY_FILE: cannot read .*missing\.enc \(ENOENT\)$/);
      writeFileSync(path.join(dir, "short.enc"), "x");
      expect(() => loadConfig({ ...lambdaEnv, SST_KEY_FILE: "short.enc" })).toThrow(/^invalid setting SST_KEY_FILE: .*too short/);
      expect(() => loadConfig({ ...lambdaEnv, SST_KEY: "c2hvcnQ=" })).toThrow(/^invalid setting SST_KEY: must be 32 bytes/);
    });
  });

  it("requires a verification cluster where the deploy says so (verification never on a customer's server)", () => {
    expect(() => loadConfig({ ...base, CAPYDB_REQUIRE_VERIFY_CLUSTER: "1" })).toThrow(
      /^missing setting CAPYDB_VERIFY_CLUSTER_ID: this deployment restores verification copies on a verification cluster/,
    );
    expect(loadConfig({ ...base, CAPYDB_REQUIRE_VERIFY_CLUSTER: "1", CAPYDB_VERIFY_CLUSTER_ID: "cls_01m8bbd943485gy3g6c722w2d4" }).verifyClusterId).toBe(
      "cls_01m8bbd943485gy3g6c722w2d4",
    );
    expect(loadConfig(base).requireVerifyCluster).toBe(false); // the local stack may keep one cluster
  });

  it("turns Clerk on only when its settings are present", () => {
    const c = loadConfig({
      ...base,
      CLERK_JWKS_URL: "https://clerk.example/jwks",
      CLERK_ISSUER: "https://clerk.example",
      CLERK_AUTHORIZED_PARTIES: "https://a, https://b",
    });
    expect(c.clerk).toEqual({ jwksUrl: "https://clerk.example/jwks", issuer: "https://clerk.example", authorizedParties: ["https://a", "https://b"] });
  });
});
