import type { Command } from "commander";
import { verifySignature } from "../../core/webhooks/signature.ts";
import { CliError, exitCodes } from "./errors.ts";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * `capydb webhooks verify`: checks a received webhook's `X-CapyDB-Signature` against its raw body
 * (standard input) and the endpoint's secret. Needs no API key: receivers run it.
 */
export function registerWebhooks(program: Command, out: NodeJS.WritableStream): void {
  const webhooks = program.command("webhooks").description("organization webhooks: check a received delivery's signature");
  webhooks
    .command("verify")
    .description("verify a delivery: the raw body on standard input, exit 0 when the signature is valid and fresh")
    .option("--secret <whsec>", "the endpoint's signing secret (env CAPYDB_WEBHOOK_SECRET keeps it out of shell history)")
    .requiredOption("--header <signature>", "the X-CapyDB-Signature header, t=...,v1=...")
    .option("--tolerance <seconds>", "refuse a timestamp further than this from now (default 300)", "300")
    .action(async (o: { secret?: string; header: string; tolerance: string }) => {
      const secret = o.secret ?? process.env.CAPYDB_WEBHOOK_SECRET;
      if (!secret) throw new CliError("no secret: pass --secret whsec_... or set CAPYDB_WEBHOOK_SECRET", exitCodes.usage);
      if (!/^\d+$/.test(o.tolerance)) throw new CliError("--tolerance must be a whole number of seconds", exitCodes.usage);
      const result = verifySignature({ secret, header: o.header, body: await readStdin(), toleranceSeconds: Number(o.tolerance) });
      if (!result.ok) throw new CliError(`invalid signature: ${result.reason}`);
      out.write(`valid: signed at ${new Date(result.timestamp * 1000).toISOString()}\n`);
    });
}
