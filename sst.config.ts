/// <reference path="./.sst/platform/config.d.ts" />

/**
 * CapyDB backups on AWS. The resources live in infra/*.ts, their numbers and wiring rules in
 * infra/settings.ts (plain data, checked offline by test/infra). docs/deploy.md explains a deploy.
 */
export default $config({
  app(input) {
    const production = input?.stage === "production";
    return {
      name: "capydb-backups",
      home: "aws",
      // Production keeps its table and backups when the stack is removed, and refuses `sst remove`.
      removal: production ? "retain" : "remove",
      protect: production,
    };
  },
  async run() {
    const { table, jobs, jobsDlq, bucket, deliveries } = await import("./infra/storage.ts");
    const { api } = await import("./infra/api.ts");
    await import("./infra/task.ts");
    await import("./infra/archiver.ts");
    await import("./infra/worker.ts");
    await import("./infra/dispatch.ts");
    await import("./infra/webhooks.ts");
    const { egressIps } = await import("./infra/network.ts");
    const { alarmTopic, dashboard } = await import("./infra/alarms.ts");

    // Named after the variables capydb-admin reads (docs/deploy.md).
    return {
      ApiUrl: api.url,
      CAPYDB_TABLE: table.name,
      CAPYDB_QUEUE_URL: jobs.url,
      CAPYDB_DLQ_URL: jobsDlq.url,
      CAPYDB_BUCKET: bucket.name,
      CAPYDB_DELIVERY_QUEUE_URL: deliveries.url,
      // The addresses customers allow on their clusters' port (docs/deploy.md).
      EgressIps: egressIps.map((e) => e.publicIp),
      // Subscribe a mailbox or pager to it (docs/operations.md); the dashboard shows the same figures.
      AlarmTopicArn: alarmTopic.arn,
      Dashboard: dashboard.dashboardName,
    };
  },
});
