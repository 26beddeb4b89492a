import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { z } from "../zod.ts";
import { cliLoginSources, createCliLoginInput, type CliLoginWireState } from "../contract/cli-login.ts";
import { auditItem, type Actor } from "../audit/audit.ts";
import { keys, ttlAt } from "../db/keys.ts";
import { getItem, putItem, setFields, transactWrite, updateItemIf } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { isId, newId } from "../ids.ts";
import { createApiKey } from "./keys.ts";
import type { Principal } from "./principal.ts";
import { orgManagementScopes, scopeSchema, type Scope } from "./scopes.ts";

/**
 * Device login of the CLI (SPEC section 6), as `gh auth login` does it: the CLI opens a session
 * and gets a poll token; a person signed in to the console approves it; the CLI's next poll makes
 * a new API key (source `cli`, named after the device) and answers its plaintext, once.
 *
 * Nothing secret is stored: the poll token is kept as its SHA-256 only, and the key is minted at
 * the poll that returns it (in the same transaction that marks the session completed), so no
 * plaintext key ever waits in the table.
 */

type Db = Pick<Deps, "ddb" | "table" | "now">;

/** How long a person has to approve (and the CLI to collect the key). */
export const CLI_LOGIN_TTL_MS = 10 * 60_000;
/** Polls allowed per session in one window; a CLI polling every second or two stays well under it. */
export const POLL_LIMIT = { perWindow: 10, windowMs: 10_000 } as const;
/** The table keeps a finished session this long past its expiry, so late polls still say what happened. */
const RECORD_GRACE_MS = 24 * 3600_000;

/** What the CLI asks for unless it names scopes: everything but managing keys and the organization. */
export const DEFAULT_CLI_SCOPES: readonly Scope[] = [
  "backups:read",
  "backups:write",
  "jobs:read",
  "projects:read",
  "projects:write",
  "credentials:read",
  "organizations:read",
];

/** `approved` is internal (approved, key not collected yet): the CLI reads it as `pending` (the wire's states, core/contract/cli-login.ts). */
export const cliLoginStates = ["pending", "approved", "completed", "denied", "expired"] as const;

export const cliLoginItem = z.object({
  type: z.literal("cli_login"),
  id: z.string(),
  device_name: z.string(),
  source: z.enum(cliLoginSources),
  scopes: z.array(scopeSchema),
  poll_token_hash: z.string(),
  state: z.enum(cliLoginStates),
  created_at: z.string(),
  expires_at: z.string(),
  /** Set by the approval: whose organization (and project, for a project-scoped approver) the key belongs to. */
  organization_id: z.string().nullable(),
  project_id: z.string().nullable(),
  granted_scopes: z.array(scopeSchema).nullable(),
  decided_by_kind: z.string().nullable(),
  decided_by_id: z.string().nullable(),
  decided_at: z.string().nullable(),
  api_key_id: z.string().nullable(),
  /** Rate limit of polling: the current window's start and its count. */
  poll_window: z.number().int().nullable(),
  poll_count: z.number().int().nullable(),
});
export type CliLoginItem = z.infer<typeof cliLoginItem>;

const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");
const newPollToken = () => `cpt_${randomBytes(32).toString("base64url")}`;

/** The state the clients see: expiry is read from the clock, and `approved` is still `pending` to them. */
export function wireState(s: Pick<CliLoginItem, "state" | "expires_at">, now: Date): CliLoginWireState {
  if (s.state === "completed" || s.state === "denied") return s.state;
  if (Date.parse(s.expires_at) <= now.getTime()) return "expired";
  return "pending";
}

/** Opens a session (no credential needed): its id and the poll token, shown only here. */
export async function createCliLogin(deps: Db, input: z.input<typeof createCliLoginInput>): Promise<{ session: CliLoginItem; pollToken: string }> {
  const data = createCliLoginInput.parse(input);
  const now = deps.now();
  const pollToken = newPollToken();
  const expires = new Date(now.getTime() + CLI_LOGIN_TTL_MS);
  const session: CliLoginItem = {
    type: "cli_login",
    id: newId("cliLoginSession", now),
    device_name: data.device_name,
    source: data.source,
    scopes: [...new Set(data.scopes ?? DEFAULT_CLI_SCOPES)],
    poll_token_hash: hashToken(pollToken),
    state: "pending",
    created_at: iso(now),
    expires_at: iso(expires),
    organization_id: null,
    project_id: null,
    granted_scopes: null,
    decided_by_kind: null,
    decided_by_id: null,
    decided_at: null,
    api_key_id: null,
    poll_window: null,
    poll_count: null,
  };
  await putItem(
    deps,
    { ...keys.cliLogin(session.id), ...session, ttl: ttlAt(new Date(expires.getTime() + RECORD_GRACE_MS)) },
    { condition: "attribute_not_exists(pk)" },
  );
  return { session, pollToken };
}

export async function getCliLogin(deps: Db, id: string): Promise<CliLoginItem | undefined> {
  if (!isId("cliLoginSession", id)) return undefined;
  return getItem(deps, cliLoginItem, keys.cliLogin(id));
}

const notFound = (id: string) => new AppError("not_found", `login session ${id} not found`);

/**
 * The scopes the new key gets: those asked for that the approver holds (a login never grants more
 * than the person approving it has); a project-scoped approver's key is scoped to the same
 * project, without organization scopes.
 */
export function grantedScopes(session: Pick<CliLoginItem, "scopes">, approver: Pick<Principal, "scopes" | "project_id">): Scope[] {
  return session.scopes.filter((s) => approver.scopes.includes(s) && !(approver.project_id && orgManagementScopes.includes(s)));
}

/** A pending, unexpired session, or the reason it cannot be decided (409, or 404 when unknown). */
async function pendingSession(deps: Db, id: string): Promise<CliLoginItem> {
  const session = await getCliLogin(deps, id);
  if (!session) throw notFound(id);
  const state = wireState(session, deps.now());
  if (session.state !== "pending" || state !== "pending") {
    throw new AppError(
      "conflict",
      `login session ${id} is ${session.state === "approved" ? "already approved" : state}: start a new one with \`capydb login\``,
    );
  }
  return session;
}

/** Records a decision, conditional on the session still being pending and unexpired. */
async function decide(deps: Db, session: CliLoginItem, fields: Partial<CliLoginItem>, audit: Parameters<typeof auditItem>[1]): Promise<void> {
  const now = deps.now();
  const set = setFields({ ...fields, decided_at: iso(now) });
  await transactWrite(
    deps,
    [
      {
        Update: {
          TableName: deps.table,
          Key: keys.cliLogin(session.id),
          ...set,
          UpdateExpression: set.UpdateExpression!,
          ConditionExpression: "#state = :pending AND expires_at > :now",
          ExpressionAttributeNames: { ...set.ExpressionAttributeNames, "#state": "state" },
          ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ":pending": "pending", ":now": iso(now) },
        },
      },
      auditItem(deps, audit),
    ],
    `login session ${session.id} was decided or expired meanwhile: start a new one with \`capydb login\``,
  );
}

/** What the approval page shows: the device, what it asks for, and what the approver would grant. */
export async function describeCliLogin(deps: Db, id: string, approver: Principal) {
  const session = await getCliLogin(deps, id);
  if (!session) throw notFound(id);
  return {
    session_id: session.id,
    device_name: session.device_name,
    source: session.source,
    state: wireState(session, deps.now()),
    requested_scopes: session.scopes,
    granted_scopes: grantedScopes(session, approver),
    organization_id: approver.organization_id,
    project_id: approver.project_id,
    created_at: session.created_at,
    expires_at: session.expires_at,
  };
}

/** A person approves: the key will belong to their organization, with the scopes they hold of those asked. */
export async function approveCliLogin(deps: Db, id: string, approver: Principal, actor: Actor): Promise<CliLoginItem> {
  const session = await pendingSession(deps, id);
  const granted = grantedScopes(session, approver);
  if (!granted.length) {
    throw new AppError("forbidden", `you hold none of the scopes this login asks for (${session.scopes.join(", ")}): ask an organization admin to approve it`);
  }
  const fields = {
    state: "approved" as const,
    organization_id: approver.organization_id,
    project_id: approver.project_id,
    granted_scopes: granted,
    decided_by_kind: actor.kind,
    decided_by_id: actor.id,
  };
  await decide(deps, session, fields, {
    organization_id: approver.organization_id,
    project_id: approver.project_id,
    action: "cli_login.approved",
    actor,
    target_type: "cli_login",
    target_id: session.id,
    metadata: { session_id: session.id, device_name: session.device_name, source: session.source, scopes: granted },
  });
  return { ...session, ...fields };
}

/** A person refuses: the CLI's next poll says `denied`, and no key is ever made. */
export async function denyCliLogin(deps: Db, id: string, approver: Principal, actor: Actor): Promise<CliLoginItem> {
  const session = await pendingSession(deps, id);
  const fields = { state: "denied" as const, decided_by_kind: actor.kind, decided_by_id: actor.id };
  await decide(deps, session, fields, {
    organization_id: approver.organization_id,
    project_id: approver.project_id,
    action: "cli_login.denied",
    actor,
    target_type: "cli_login",
    target_id: session.id,
    metadata: { session_id: session.id, device_name: session.device_name, source: session.source },
  });
  return { ...session, ...fields };
}

/** Constant-time check of a poll token against the stored hash. */
function tokenMatches(session: CliLoginItem, token: string): boolean {
  const a = Buffer.from(hashToken(token), "hex");
  const b = Buffer.from(session.poll_token_hash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Counts a poll; false when the session polled more than `POLL_LIMIT` allows in this window. */
async function countPoll(deps: Db, session: CliLoginItem): Promise<boolean> {
  const window = Math.floor(deps.now().getTime() / POLL_LIMIT.windowMs);
  const Key = keys.cliLogin(session.id);
  const fresh = await updateItemIf(deps, cliLoginItem, {
    Key,
    UpdateExpression: "SET poll_window = :w, poll_count = :one",
    ConditionExpression: "attribute_not_exists(poll_window) OR poll_window <> :w",
    ExpressionAttributeValues: { ":w": window, ":one": 1 },
  });
  if (fresh) return true;
  const counted = await updateItemIf(deps, cliLoginItem, {
    Key,
    UpdateExpression: "ADD poll_count :one",
    ConditionExpression: "poll_window = :w AND poll_count < :max",
    ExpressionAttributeValues: { ":w": window, ":one": 1, ":max": POLL_LIMIT.perWindow },
  });
  return counted !== undefined;
}

export interface CliLoginPoll {
  session_id: string;
  state: CliLoginWireState;
  expires_at: string;
  plaintext_api_key: string | null;
}

/**
 * The CLI's poll. An unknown session and a wrong token look the same (404). After an approval, the
 * first poll mints the key and marks the session completed in one transaction, so exactly one poll
 * ever sees the plaintext; later ones answer `completed` without it.
 */
export async function pollCliLogin(deps: Db, id: string, pollToken: string | undefined): Promise<CliLoginPoll> {
  if (!pollToken) throw new AppError("unauthorized", "the poll token is missing: send it in the X-CapyDB-Poll-Token header");
  const session = await getCliLogin(deps, id);
  if (!session || !tokenMatches(session, pollToken)) throw notFound(id);
  if (!(await countPoll(deps, session))) {
    throw new AppError("too_many_requests", `polling too fast: at most ${POLL_LIMIT.perWindow} polls every ${POLL_LIMIT.windowMs / 1000} seconds`, {
      retryAfterSeconds: Math.ceil(POLL_LIMIT.windowMs / 1000),
    });
  }
  const now = deps.now();
  const answer = (state: CliLoginWireState, key: string | null = null): CliLoginPoll => ({
    session_id: session.id,
    state,
    expires_at: session.expires_at,
    plaintext_api_key: key,
  });
  const state = wireState(session, now);
  if (session.state !== "approved" || state === "expired") return answer(state);

  const { key, record } = await createApiKey(
    deps,
    {
      organization_id: session.organization_id!,
      project_id: session.project_id,
      name: session.device_name,
      scopes: session.granted_scopes!,
      source: "cli",
    },
    { kind: (session.decided_by_kind ?? "system") as Actor["kind"], id: session.decided_by_id ?? "unknown" },
    {
      items: [
        {
          Update: {
            TableName: deps.table,
            Key: keys.cliLogin(session.id),
            UpdateExpression: "SET #state = :completed",
            ConditionExpression: "#state = :approved",
            ExpressionAttributeNames: { "#state": "state" },
            ExpressionAttributeValues: { ":completed": "completed", ":approved": "approved" },
          },
        },
      ],
      conflictMessage: `login session ${session.id} was completed by another poll`,
    },
  ).catch((err: unknown) => {
    // Another poll won the race: it has the key; this one says completed, without it.
    if (err instanceof AppError && err.code === "conflict") return { key: null, record: null };
    throw err;
  });
  if (record) {
    // Which key the login made, for the approval page and the operators (the key itself says so too).
    await updateItemIf(deps, cliLoginItem, {
      Key: keys.cliLogin(session.id),
      UpdateExpression: "SET api_key_id = :key",
      ConditionExpression: "#state = :completed",
      ExpressionAttributeNames: { "#state": "state" },
      ExpressionAttributeValues: { ":key": record.id, ":completed": "completed" },
    });
  }
  return answer("completed", key);
}
