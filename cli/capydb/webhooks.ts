import { InvalidArgumentError, type Command } from "commander";
import { eventTypeSchema, eventTypes, type EventType } from "../../core/contract/events.ts";
import { verifySignature } from "../../core/contract/webhook-signature.ts";
import type { ApiClient, WebhookDelivery, WebhookEndpoint } from "./client.ts";
import { CliError, exitCodes } from "./errors.ts";
import { formatTime, printJson, renderFields, renderTable } from "./output.ts";
import type { CommandKit } from "./restore-commands.ts";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/** `--event T` may be given several times; each must be an event type of SPEC section 5. */
function collectEvent(value: string, previous: EventType[] = []): EventType[] {
  const type = eventTypeSchema.safeParse(value);
  if (!type.success) throw new InvalidArgumentError(`unknown event type '${value}'. Allowed: ${eventTypes.join(", ")}`);
  return previous.includes(type.data) ? previous : [...previous, type.data];
}

const eventsText = (types: string[]) => (types.length ? types.join(", ") : "all");

const endpointFields = (e: WebhookEndpoint) =>
  renderFields([
    ["Endpoint", e.id],
    ["URL", e.url],
    ["Description", e.description || "-"],
    ["Events", eventsText(e.event_types)],
    ["Active", e.is_active ? "yes" : "no"],
    ["Health", e.health],
    ["Created", formatTime(e.created_at)],
    ["Updated", formatTime(e.updated_at)],
  ]);

const endpointsTable = (es: WebhookEndpoint[]) =>
  renderTable(
    ["ID", "URL", "EVENTS", "ACTIVE", "HEALTH", "DESCRIPTION"],
    es.map((e) => [e.id, e.url, eventsText(e.event_types), e.is_active ? "yes" : "no", e.health, e.description || "-"]),
  );

const oneLine = (s: string | null, max = 60) => {
  if (!s) return "-";
  const flat = s.replace(/\s+/g, " ").trim();
  return flat.length > max ? flat.slice(0, max - 1) + "…" : flat;
};

const deliveryFields = (d: WebhookDelivery) =>
  renderFields([
    ["Delivery", d.id],
    ["Endpoint", d.endpoint_id],
    ["Event", `${d.event_type} (${String(d.payload.id ?? "-")})`],
    ["State", d.state],
    ["Attempts", `${d.attempts}/${d.max_attempts}`],
    ["Next attempt", formatTime(d.next_attempt_at)],
    ["Response", d.response_status === null ? "-" : `HTTP ${d.response_status}`],
    ...(d.last_error ? ([["Last error", oneLine(d.last_error, 200)]] as [string, string][]) : []),
    ["Created", formatTime(d.created_at)],
    ["Delivered", formatTime(d.delivered_at)],
  ]);

const deliveriesTable = (ds: WebhookDelivery[]) =>
  renderTable(
    ["ID", "EVENT", "STATE", "ATTEMPTS", "RESPONSE", "CREATED", "ERROR"],
    ds.map((d) => [
      d.id,
      d.event_type,
      d.state,
      `${d.attempts}/${d.max_attempts}`,
      d.response_status === null ? "-" : String(d.response_status),
      formatTime(d.created_at),
      oneLine(d.last_error),
    ]),
  );

/**
 * `capydb webhooks ...`: the organization's endpoints and their deliveries through the API, and
 * `verify`, which checks a received delivery's signature offline (receivers run it: no API key).
 * The signing secret is printed only where the API answers it (create, rotate-secret), on stdout,
 * and never in a note or an error.
 */
export function registerWebhooks(program: Command, kit: CommandKit): void {
  const { io, note } = kit;
  const webhooks = program
    .command("webhooks")
    .description("organization webhooks: endpoints that get a signed POST when a backup, restore, preview or export finishes");

  /** The organization: --org, else the key's own (asked of the API rather than configured). */
  async function org(cmd: Command): Promise<{ client: ApiClient; format: "table" | "json"; orgId: string }> {
    const { client, format } = kit.context(cmd);
    const given = cmd.opts<{ org?: string }>().org;
    const orgId = given ?? (await client.me()).data.principal.organization_id;
    return { client, format, orgId };
  }
  const orgOption = ["--org <id>", "the organization (default: the API key's own)"] as const;

  webhooks
    .command("list")
    .description("list the organization's endpoints")
    .option(...orgOption)
    .action(async (_o: unknown, cmd: Command) => {
      const { client, format, orgId } = await org(cmd);
      const res = await client.listWebhookEndpoints(orgId);
      if (format === "json") return printJson(io, res.body);
      if (!res.data.webhook_endpoints.length) return note("No webhook endpoints. Add one with `capydb webhooks create --url https://...`.");
      io.out.write(endpointsTable(res.data.webhook_endpoints));
    });

  webhooks
    .command("get <endpoint-id>")
    .description("show an endpoint and its health")
    .option(...orgOption)
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { client, format, orgId } = await org(cmd);
      const res = await client.getWebhookEndpoint(orgId, id);
      if (format === "json") return printJson(io, res.body);
      io.out.write(endpointFields(res.data.webhook_endpoint));
    });

  webhooks
    .command("create")
    .description("add an endpoint; prints its signing secret, which is shown this once")
    .requiredOption("--url <url>", "the receiver's https URL (private, loopback and metadata addresses are refused)")
    .option("--event <type>", `an event type to receive, repeatable (default: all): ${eventTypes.join(", ")}`, collectEvent)
    .option("--description <text>", "what it is for")
    .option(...orgOption)
    .action(async (o: { url: string; event?: EventType[]; description?: string }, cmd: Command) => {
      const { client, format, orgId } = await org(cmd);
      const res = await client.createWebhookEndpoint(orgId, { url: o.url, event_types: o.event, description: o.description });
      if (format === "json") return printJson(io, res.body);
      io.out.write(endpointFields(res.data.webhook_endpoint) + renderFields([["Signing secret", res.data.plaintext_secret]]));
      note("Store the signing secret now: it is not shown again (`capydb webhooks rotate-secret` makes a new one).");
    });

  webhooks
    .command("update <endpoint-id>")
    .description("change an endpoint; options not given keep their values")
    .option("--url <url>", "a new https URL")
    .option("--event <type>", "replace the event types with these (repeatable)", collectEvent)
    .option("--all-events", "receive every event type")
    .option("--description <text>", "a new description")
    .option("--enable", "turn it on (a disabled endpoint's failure streak is forgotten)")
    .option("--disable", "turn it off: no deliveries until it is turned on again")
    .option(...orgOption)
    .action(
      async (
        id: string,
        o: { url?: string; event?: EventType[]; allEvents?: boolean; description?: string; enable?: boolean; disable?: boolean },
        cmd: Command,
      ) => {
        if (o.enable && o.disable) throw new CliError("give --enable or --disable, not both", exitCodes.usage);
        if (o.event && o.allEvents) throw new CliError("give --event or --all-events, not both", exitCodes.usage);
        const body = {
          url: o.url,
          event_types: o.allEvents ? [] : o.event,
          description: o.description,
          is_active: o.enable ? true : o.disable ? false : undefined,
        };
        if (Object.values(body).every((v) => v === undefined)) {
          throw new CliError("nothing to change: give --url, --event, --all-events, --description, --enable or --disable", exitCodes.usage);
        }
        const { client, format, orgId } = await org(cmd);
        const res = await client.updateWebhookEndpoint(orgId, id, body);
        if (format === "json") return printJson(io, res.body);
        io.out.write(endpointFields(res.data.webhook_endpoint));
      },
    );

  webhooks
    .command("delete <endpoint-id>")
    .description("delete an endpoint: it gets no more deliveries")
    .option(...orgOption)
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { client, format, orgId } = await org(cmd);
      const res = await client.deleteWebhookEndpoint(orgId, id);
      if (format === "json") return printJson(io, res.body);
      note(`Deleted webhook endpoint ${res.data.webhook_endpoint.id} (${res.data.webhook_endpoint.url}).`);
    });

  webhooks
    .command("rotate-secret <endpoint-id>")
    .description("make a new signing secret; the old one keeps signing beside it for 24 hours")
    .option(...orgOption)
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { client, format, orgId } = await org(cmd);
      const res = await client.rotateWebhookSecret(orgId, id);
      if (format === "json") return printJson(io, res.body);
      io.out.write(
        renderFields([
          ["Endpoint", res.data.webhook_endpoint.id],
          ["Signing secret", res.data.plaintext_secret],
        ]),
      );
      note(
        "Deliveries carry a signature by the new secret and, for 24 hours, one by the old: switch the receiver over within that time. The new secret is not shown again.",
      );
    });

  webhooks
    .command("test <endpoint-id>")
    .description("send a webhook.test event to the endpoint (delivered in the background)")
    .option(...orgOption)
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { client, format, orgId } = await org(cmd);
      const res = await client.testWebhookEndpoint(orgId, id);
      if (format === "json") return printJson(io, res.body);
      io.out.write(deliveryFields(res.data.delivery));
      note(`Follow it with \`capydb webhooks deliveries ${id}\`.`);
    });

  webhooks
    .command("deliveries <endpoint-id>")
    .description("the endpoint's deliveries, newest first: state, attempts, the receiver's answer")
    .option("--limit <n>", "at most this many (1-100, default 25)", kit.int("--limit", 1, 100))
    .option("--cursor <cursor>", "the next page, from a previous list")
    .option(...orgOption)
    .action(async (id: string, o: { limit?: number; cursor?: string }, cmd: Command) => {
      const { client, format, orgId } = await org(cmd);
      const res = await client.listWebhookDeliveries(orgId, id, { limit: o.limit, cursor: o.cursor });
      if (format === "json") return printJson(io, res.body);
      if (!res.data.deliveries.length) note(`No deliveries yet. Send one with \`capydb webhooks test ${id}\`.`);
      else io.out.write(deliveriesTable(res.data.deliveries));
      if (res.nextCursor) note(`More deliveries: --cursor ${res.nextCursor}`);
    });

  webhooks
    .command("redeliver <endpoint-id> <delivery-id>")
    .description("send a delivery's event again, as a new delivery (same event id and body, new X-CapyDB-Delivery)")
    .option(...orgOption)
    .action(async (id: string, deliveryId: string, _o: unknown, cmd: Command) => {
      const { client, format, orgId } = await org(cmd);
      const res = await client.redeliverWebhook(orgId, id, deliveryId);
      if (format === "json") return printJson(io, res.body);
      io.out.write(deliveryFields(res.data.delivery));
      note(`Follow it with \`capydb webhooks deliveries ${id}\`.`);
    });

  webhooks
    .command("verify")
    .description("verify a delivery: the raw body on standard input, exit 0 when the signature is valid and fresh (needs no API key)")
    .option("--secret <whsec>", "the endpoint's signing secret (env CAPYDB_WEBHOOK_SECRET keeps it out of shell history)")
    .requiredOption("--header <signature>", "the X-CapyDB-Signature header, t=...,v1=...")
    .option("--tolerance <seconds>", "refuse a timestamp further than this from now (default 300)", "300")
    .action(async (o: { secret?: string; header: string; tolerance: string }) => {
      const secret = o.secret ?? process.env.CAPYDB_WEBHOOK_SECRET;
      if (!secret) throw new CliError("no secret: pass --secret whsec_... or set CAPYDB_WEBHOOK_SECRET", exitCodes.usage);
      if (!/^\d+$/.test(o.tolerance)) throw new CliError("--tolerance must be a whole number of seconds", exitCodes.usage);
      const result = verifySignature({ secret, header: o.header, body: await readStdin(), toleranceSeconds: Number(o.tolerance) });
      if (!result.ok) throw new CliError(`invalid signature: ${result.reason}`);
      io.out.write(`valid: signed at ${new Date(result.timestamp * 1000).toISOString()}\n`);
    });
}
