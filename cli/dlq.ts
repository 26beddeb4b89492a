import { ChangeMessageVisibilityCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import type { Deps } from "../core/deps.ts";
import { AppError } from "../core/errors.ts";
import { redact } from "../core/redact.ts";

function dlqUrl(deps: Deps): string {
  if (!deps.dlqUrl) throw new AppError("bad_request", "no dead-letter queue configured (CAPYDB_DLQ_URL)");
  return deps.dlqUrl;
}

/** Peeks at the dead-letter queue: shows messages and makes them visible again right away. */
export async function dlqList(deps: Deps, max = 50) {
  const url = dlqUrl(deps);
  const seen = new Map<string, { message_id: string; body: string; receive_count: number; sent_at: string | null }>();
  const handles: string[] = [];
  for (let round = 0; round < 20 && seen.size < max; round++) {
    const res = await deps.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: 30,
        MessageSystemAttributeNames: ["ApproximateReceiveCount", "SentTimestamp"],
      }),
    );
    const messages = res.Messages ?? [];
    if (!messages.length) break;
    for (const m of messages) {
      handles.push(m.ReceiptHandle!);
      if (seen.has(m.MessageId!)) continue;
      seen.set(m.MessageId!, {
        message_id: m.MessageId!,
        body: redact(m.Body ?? "").slice(0, 2000),
        receive_count: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
        sent_at: m.Attributes?.SentTimestamp ? new Date(Number(m.Attributes.SentTimestamp)).toISOString() : null,
      });
    }
  }
  await Promise.all(
    handles.map((h) => deps.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: h, VisibilityTimeout: 0 })).catch(() => undefined)),
  );
  return { count: seen.size, messages: [...seen.values()] };
}

/** Moves every dead-letter message back to the jobs queue (send first, then delete: never lost). */
export async function dlqRedrive(deps: Deps) {
  const url = dlqUrl(deps);
  let moved = 0;
  for (;;) {
    const res = await deps.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60 }));
    const messages = res.Messages ?? [];
    if (!messages.length) break;
    for (const m of messages) {
      await deps.sqs.send(new SendMessageCommand({ QueueUrl: deps.queueUrl, MessageBody: m.Body ?? "" }));
      await deps.sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
      moved++;
    }
  }
  return { moved };
}
