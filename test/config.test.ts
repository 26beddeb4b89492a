import { describe, expect, it } from "vitest";
import { loadConfig } from "../core/config.ts";

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
    expect(c).toMatchObject({ region: "eu-west-1", table: "prod-table", bucket: "prod-bucket", dlqUrl: "https://sqs.us-east-1.amazonaws.com/1/dlq", clerk: undefined });
  });

  it("turns Clerk on only when its settings are present", () => {
    const c = loadConfig({ ...base, CLERK_JWKS_URL: "https://clerk.example/jwks", CLERK_ISSUER: "https://clerk.example", CLERK_AUTHORIZED_PARTIES: "https://a, https://b" });
    expect(c.clerk).toEqual({ jwksUrl: "https://clerk.example/jwks", issuer: "https://clerk.example", authorizedParties: ["https://a", "https://b"] });
  });
});
