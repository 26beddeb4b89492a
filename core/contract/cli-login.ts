import { z } from "../zod.ts";
import { scopeSchema } from "./scopes.ts";
import { at } from "./shared.ts";

export const cliLoginSources = ["cli", "agent"] as const;
/** A device login's state as the CLI reads it (the service's internal `approved` reads as `pending`). */
export const cliLoginWireStates = ["pending", "completed", "denied", "expired"] as const;
export type CliLoginWireState = (typeof cliLoginWireStates)[number];

export const createCliLoginInput = z.object({
  device_name: z.string().trim().min(1, "must not be empty").max(100),
  source: z.enum(cliLoginSources).default("cli"),
  scopes: z.array(scopeSchema).min(1).optional(),
});

/** Wire schemas of the CLI's device login (SPEC section 6), named as OpenAPI components. */
export const CreateCliLoginRequest = createCliLoginInput
  .extend({
    device_name: createCliLoginInput.shape.device_name.meta({ description: "Shown to the person approving, and the new key's name (1-100 characters)." }),
    source: createCliLoginInput.shape.source.meta({ description: "cli (default) or agent." }),
    scopes: createCliLoginInput.shape.scopes.meta({ description: "Scopes to ask for (default: every scope but api_keys:* and organizations:write)." }),
  })
  .openapi("CreateCliLoginRequest");

export const CliLoginSession = z
  .object({
    session_id: z.string(),
    poll_token: z.string().openapi({ description: "Send it in X-CapyDB-Poll-Token when polling; shown only here." }),
    state: z.literal("pending"),
    expires_at: at(),
    verification_url: z.string().openapi({ description: "The console page where a person signs in and approves this device." }),
  })
  .openapi("CliLoginSession");

export const CliLoginPoll = z
  .object({
    session_id: z.string(),
    state: z.enum(cliLoginWireStates),
    expires_at: at(),
    plaintext_api_key: z.string().nullable().openapi({ description: "The new key, on the first poll after approval only; null otherwise." }),
  })
  .openapi("CliLoginPoll");

export const CliLoginApproval = z
  .object({
    session_id: z.string(),
    device_name: z.string(),
    source: z.enum(["cli", "agent"]),
    state: z.enum(cliLoginWireStates),
    requested_scopes: z.array(scopeSchema),
    granted_scopes: z.array(scopeSchema).openapi({ description: "What the key would get from this approver: the requested scopes the approver holds." }),
    organization_id: z.string(),
    project_id: z.string().nullable(),
    created_at: at(),
    expires_at: at(),
  })
  .openapi("CliLoginApproval", { description: "A device login as the person approving it sees it." });

export const CliLoginParams = z.object({
  sessionID: z
    .string()
    .min(1)
    .openapi({ param: { name: "sessionID", in: "path" }, description: "Login session id (cli_...)." }),
});

export const PollQuery = z.object({
  poll_token: z.string().max(200).optional().openapi({ description: "The poll token, when it cannot go in the X-CapyDB-Poll-Token header." }),
});
