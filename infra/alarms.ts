import { METRICS_NAMESPACE, metricNames } from "../core/dispatch/metrics-names.ts";
import { apiRoute, consoleFunction } from "./api.ts";
import { dispatcher } from "./dispatch.ts";
import { alarms as settings } from "./settings.ts";
import { deliveriesDlq, jobs, jobsDlq } from "./storage.ts";
import { deliver } from "./webhooks.ts";
import { worker } from "./worker.ts";

/**
 * What an operator must hear about, as CloudWatch alarms on one SNS topic (a deploy output:
 * subscribe a mailbox or a pager to it; CAPYDB_ALARM_EMAIL at deploy subscribes one address), and
 * a dashboard with the same figures. Thresholds are in infra/settings.ts.
 */
export const alarmTopic = new aws.sns.Topic("Alarms", {});
if (process.env.CAPYDB_ALARM_EMAIL) {
  new aws.sns.TopicSubscription("AlarmsEmail", { topic: alarmTopic.arn, protocol: "email", endpoint: process.env.CAPYDB_ALARM_EMAIL });
}

type Stat = "Maximum" | "Sum";
function alarm(
  name: string,
  description: string,
  metric: { namespace: string; metricName: string; dimensions: Record<string, $util.Input<string>>; statistic: Stat },
  threshold: number,
  opts: { periodSeconds?: number; missingBreaches?: boolean } = {},
) {
  return new aws.cloudwatch.MetricAlarm(name, {
    alarmDescription: description,
    namespace: metric.namespace,
    metricName: metric.metricName,
    dimensions: metric.dimensions,
    statistic: metric.statistic,
    period: opts.periodSeconds ?? 300,
    evaluationPeriods: 1,
    threshold,
    comparisonOperator: "GreaterThanThreshold",
    // A figure that stops arriving (the dispatcher not running) is trouble too where it says so.
    treatMissingData: opts.missingBreaches ? "breaching" : "notBreaching",
    alarmActions: [alarmTopic.arn],
    okActions: [alarmTopic.arn],
  });
}

const queueMetric = (queueName: $util.Input<string>, metricName: string) => ({
  namespace: "AWS/SQS",
  metricName,
  dimensions: { QueueName: queueName },
  statistic: "Maximum" as const,
});
alarm(
  "JobsDlqDepth",
  "Job messages in the dead-letter queue: capydb-admin dlq list",
  queueMetric(jobsDlq.nodes.queue.name, "ApproximateNumberOfMessagesVisible"),
  0,
);
alarm(
  "DeliveriesDlqDepth",
  "Webhook delivery messages in their dead-letter queue",
  queueMetric(deliveriesDlq.nodes.queue.name, "ApproximateNumberOfMessagesVisible"),
  0,
);
alarm(
  "JobsOldestMessage",
  "A job message has waited too long for a worker (all busy, or failing)",
  queueMetric(jobs.nodes.queue.name, "ApproximateAgeOfOldestMessage"),
  settings.oldestJobMessageSeconds,
);

const functions = {
  Api: apiRoute.nodes.function,
  Worker: worker.nodes.function,
  Dispatch: dispatcher.nodes.function,
  Deliver: deliver.nodes.function,
  Console: consoleFunction.nodes.function,
};
for (const [name, fn] of Object.entries(functions)) {
  const dims = { FunctionName: fn.name };
  alarm(
    `${name}Errors`,
    `${name} function errors`,
    { namespace: "AWS/Lambda", metricName: "Errors", dimensions: dims, statistic: "Sum" },
    settings.functionErrors,
  );
  alarm(`${name}Throttles`, `${name} function throttles`, { namespace: "AWS/Lambda", metricName: "Throttles", dimensions: dims, statistic: "Sum" }, 0);
}

const dispatchMetric = (metricName: string) => ({
  namespace: METRICS_NAMESPACE,
  metricName,
  dimensions: { service: "dispatch" },
  statistic: "Maximum" as const,
});
alarm(
  "DispatchPhaseFailing",
  "A dispatcher phase (schedules, retention, reaper, ...) failed: its log line names it",
  dispatchMetric(metricNames.phaseFailures),
  0,
);
alarm(
  "BackupStaleness",
  "A project with an active schedule has no verified backup in 26 hours (the dispatcher's warning lists them)",
  dispatchMetric(metricNames.staleProjects),
  0,
  { periodSeconds: 900, missingBreaches: true },
);

// The WAL archive (core/dispatch/metrics.ts publishes the worst cluster's figures; per cluster under `cluster`).
alarm(
  "WalArchiveLag",
  "A cluster's WAL archive is more than 2 minutes behind (receiver down or slow): capydb-admin archive status",
  dispatchMetric(metricNames.walArchiveLagSeconds),
  settings.walArchiveLagSeconds,
  { missingBreaches: true },
);
alarm(
  "WalArchiveGap",
  "A cluster's WAL archive has a gap no base backup has closed yet (restores cannot cross it): capydb-admin archive status",
  dispatchMetric(metricNames.walArchiveOpenGaps),
  0,
);
alarm(
  "BaseBackupFailing",
  "A cluster's newest base backup failed (retried every 5 minutes; the previous ones stay): capydb-admin archive status",
  dispatchMetric(metricNames.baseBackupFailing),
  0,
);
alarm(
  "WalSlotRetained",
  "A replication slot keeps more WAL on its cluster than the threshold: the receiver is behind (the server drops the slot at max_slot_wal_keep_size)",
  dispatchMetric(metricNames.walSlotRetainedBytes),
  settings.walSlotRetainedBytes,
);
alarm(
  "PitrDrillFailing",
  "A cluster's daily point-in-time drill failed: GET .../pitr last_drill and the worker's 'pitr drill failed' line say why",
  dispatchMetric(metricNames.pitrDrillsFailing),
  0,
);

/** One dashboard with the alarms' figures. */
export const dashboard = new aws.cloudwatch.Dashboard("Dashboard", {
  dashboardName: `${$app.name}-${$app.stage}`,
  dashboardBody: $jsonStringify({
    widgets: [
      {
        type: "metric",
        width: 12,
        height: 6,
        properties: {
          title: "Dead-letter queues",
          region: aws.getRegionOutput().name,
          stat: "Maximum",
          metrics: [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", jobsDlq.nodes.queue.name],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", deliveriesDlq.nodes.queue.name],
          ],
        },
      },
      {
        type: "metric",
        width: 12,
        height: 6,
        properties: {
          title: "Oldest job message (s)",
          region: aws.getRegionOutput().name,
          stat: "Maximum",
          metrics: [["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", jobs.nodes.queue.name]],
        },
      },
      {
        type: "metric",
        width: 12,
        height: 6,
        properties: {
          title: "Function errors",
          region: aws.getRegionOutput().name,
          stat: "Sum",
          metrics: Object.values(functions).map((fn) => ["AWS/Lambda", "Errors", "FunctionName", fn.name]),
        },
      },
      {
        type: "metric",
        width: 12,
        height: 6,
        properties: {
          title: "Function throttles",
          region: aws.getRegionOutput().name,
          stat: "Sum",
          metrics: Object.values(functions).map((fn) => ["AWS/Lambda", "Throttles", "FunctionName", fn.name]),
        },
      },
      {
        type: "metric",
        width: 12,
        height: 6,
        properties: {
          title: "Stale projects, dispatcher phase failures",
          region: aws.getRegionOutput().name,
          stat: "Maximum",
          metrics: [
            [METRICS_NAMESPACE, metricNames.staleProjects, "service", "dispatch"],
            [METRICS_NAMESPACE, metricNames.phaseFailures, "service", "dispatch"],
          ],
        },
      },
      {
        type: "metric",
        width: 12,
        height: 6,
        properties: {
          title: "WAL archive: worst lag (s), open gaps, failing base backups",
          region: aws.getRegionOutput().name,
          stat: "Maximum",
          metrics: [
            [METRICS_NAMESPACE, metricNames.walArchiveLagSeconds, "service", "dispatch"],
            [METRICS_NAMESPACE, metricNames.walArchiveOpenGaps, "service", "dispatch"],
            [METRICS_NAMESPACE, metricNames.baseBackupFailing, "service", "dispatch"],
          ],
        },
      },
    ],
  }),
});
