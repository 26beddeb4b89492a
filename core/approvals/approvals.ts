import { createHash, randomBytes } from "node:crypto";
import type { TransactWriteCommandInput } from "@aws-sdk/lib-dynamodb";
import { z } from "../zod.ts";
import { approvalActionSchema, type approvalSchema, type ApprovalAction } from "../contract/approvals.ts";
import { auditItem, type Actor } from "../audit/audit.ts";
import { keys, ttlAt } from "../db/keys.ts";
import { getItem, transactWrite } from "../db/store.ts";
import { iso, type Deps } from "../deps.ts";
import { AppError } from "../errors.ts";
import { newId } from "../ids.ts";
import type { Project } from "../orgs/orgs.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;
type TransactItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

/**
 * Approvals: a human admin's single-use consent to one destructive operation on one project.
 * The token is shown once; only its SHA-256 is stored. It is consumed by a conditional update in
 * the same transaction that creates the operation's job, so a token yields at most one operation,
 * and a request that fails for another reason does not burn it.
 */
/** About ten minutes: long enough to paste into a terminal, short enough not to linger in one. */
export const APPROVAL_TTL_MS = 10 * 60_000;
/** A used or expired record stays a day longer, so a late caller is told why, not "unknown". */
const RECORD_GRACE_MS = 24 * 3600_000;

const TOKEN_PREFIX = "ap_";
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export const approvalTokenPattern = /^ap_[0-9A-Za-z]{40}$/;

export type { ApprovalAction };
export type Approval = z.infer<typeof approvalSchema>;

export const approvalItem = z.object({
  item_type: z.literal("approval"),
  id: z.string(),
  organization_id: z.string(),
  project_id: z.string(),
  action: approvalActionSchema,
  token_hash: z.string(),
  created_by_actor_kind: z.string(),
  created_by_actor_id: z.string(),
  created_at: z.string(),
  expires_at: z.string(),
  used_at: z.string().nullable(),
  used_by_actor_kind: z.string().nullable(),
  used_by_actor_id: z.string().nullable(),
  used_for_target_type: z.string().nullable(),
  used_for_target_id: z.string().nullable(),
});
export type ApprovalItem = z.infer<typeof approvalItem>;

export const hashApprovalToken = (token: string) => createHash("sha256").update(token).digest("hex");

function generateToken(): string {
  let out = "";
  while (out.length < 40) {
    for (const b of randomBytes(64)) if (b < 248 && out.length < 40) out += BASE62[b % 62];
  }
  return TOKEN_PREFIX + out;
}

/**
 * Mints an approval for `action` on `project`, recorded in the audit trail in the same
 * transaction. Who may call this is the caller's business (the route admits only an admin's
 * session; `capydb-admin` is an operator on the store).
 */
export async function createApproval(
  deps: Db,
  input: { project: Pick<Project, "id" | "organization_id">; action: ApprovalAction; actor: Actor },
): Promise<Approval> {
  const action = approvalActionSchema.parse(input.action);
  const now = deps.now();
  const token = generateToken();
  const expires = new Date(now.getTime() + APPROVAL_TTL_MS);
  const item: ApprovalItem = {
    item_type: "approval",
    id: newId("approval", now),
    organization_id: input.project.organization_id,
    project_id: input.project.id,
    action,
    token_hash: hashApprovalToken(token),
    created_by_actor_kind: input.actor.kind,
    created_by_actor_id: input.actor.id,
    created_at: iso(now),
    expires_at: iso(expires),
    used_at: null,
    used_by_actor_kind: null,
    used_by_actor_id: null,
    used_for_target_type: null,
    used_for_target_id: null,
  };
  await transactWrite(deps, [
    {
      Put: {
        TableName: deps.table,
        Item: { ...keys.approval(item.token_hash), ...item, ttl: ttlAt(new Date(expires.getTime() + RECORD_GRACE_MS)) },
        ConditionExpression: "attribute_not_exists(pk)",
      },
    },
    auditItem(deps, {
      organization_id: item.organization_id,
      project_id: item.project_id,
      action: "approval.created",
      actor: input.actor,
      target_type: "approval",
      target_id: item.id,
      metadata: { approval_id: item.id, approved_action: action, expires_at: item.expires_at },
    }),
  ]);
  return { id: item.id, action, token, expires_at: item.expires_at };
}

export interface ApprovalUse {
  project: Pick<Project, "id" | "organization_id">;
  action: ApprovalAction;
}

/**
 * Reads the approval behind `token` and checks it approves `use` now. Each refusal is a 403 with
 * its own message: not a token, unknown, used, expired, another project, another action.
 */
export async function checkApproval(deps: Db, token: string | undefined, use: ApprovalUse): Promise<ApprovalItem> {
  if (!token) {
    throw new AppError(
      "bad_request",
      `approval_token is required for ${use.action}: an organization admin mints one with POST /v1/projects/${use.project.id}/approvals`,
    );
  }
  if (!approvalTokenPattern.test(token)) throw new AppError("forbidden", "approval_token is not an approval token (they look like ap_...)");
  const found = await getItem(deps, approvalItem, keys.approval(hashApprovalToken(token)));
  if (!found) throw new AppError("forbidden", "approval_token is not valid: no such approval (it may have expired more than a day ago)");
  if (found.project_id !== use.project.id || found.organization_id !== use.project.organization_id) {
    throw new AppError("forbidden", "approval_token was issued for another project: approvals are bound to one project");
  }
  if (found.action !== use.action) {
    throw new AppError("forbidden", `approval_token approves ${found.action}, not ${use.action}: ask an admin for an approval of ${use.action}`);
  }
  if (found.used_at) {
    throw new AppError("forbidden", `approval_token was already used at ${found.used_at}: each approval allows one operation, ask an admin for a new one`);
  }
  if (Date.parse(found.expires_at) <= deps.now().getTime()) {
    throw new AppError("forbidden", `approval_token expired at ${found.expires_at}: approvals last about 10 minutes, ask an admin for a new one`);
  }
  return found;
}

/**
 * The writes that consume `approval` for one operation: a conditional update (unused, unexpired,
 * same project and action) and its `approval.used` audit event. Put them in the transaction that
 * creates the operation.
 */
export function consumeApprovalItems(
  deps: Pick<Deps, "table" | "now">,
  approval: ApprovalItem,
  use: ApprovalUse & { actor: Actor; target_type: string; target_id: string; metadata?: Record<string, unknown> },
): TransactItem[] {
  const now = iso(deps.now());
  return [
    {
      Update: {
        TableName: deps.table,
        Key: keys.approval(approval.token_hash),
        UpdateExpression: "SET used_at = :now, used_by_actor_kind = :ak, used_by_actor_id = :ai, used_for_target_type = :tt, used_for_target_id = :ti",
        ConditionExpression: "attribute_exists(pk) AND attribute_type(used_at, :nulltype) AND expires_at > :now AND project_id = :p AND #action = :a",
        ExpressionAttributeNames: { "#action": "action" },
        ExpressionAttributeValues: {
          ":now": now,
          ":nulltype": "NULL",
          ":ak": use.actor.kind,
          ":ai": use.actor.id,
          ":tt": use.target_type,
          ":ti": use.target_id,
          ":p": use.project.id,
          ":a": use.action,
        },
      },
    },
    auditItem(deps, {
      organization_id: approval.organization_id,
      project_id: approval.project_id,
      action: "approval.used",
      actor: use.actor,
      target_type: "approval",
      target_id: approval.id,
      metadata: {
        approval_id: approval.id,
        approved_action: approval.action,
        approved_by_actor_kind: approval.created_by_actor_kind,
        approved_by_actor_id: approval.created_by_actor_id,
        used_for_target_type: use.target_type,
        used_for_target_id: use.target_id,
        ...use.metadata,
      },
    }),
  ];
}

/**
 * Checks the token, then commits `writes` (the operation's records) together with its
 * consumption. When the transaction is refused, a token consumed meanwhile (two requests racing
 * with one token) is reported as used; any other refusal is the operation's own conflict.
 */
export async function commitWithApproval(
  deps: Db,
  token: string | undefined,
  use: ApprovalUse & { actor: Actor; target_type: string; target_id: string; metadata?: Record<string, unknown> },
  writes: TransactItem[],
  conflictMessage?: string,
): Promise<ApprovalItem> {
  const approval = await checkApproval(deps, token, use);
  try {
    await transactWrite(deps, [...writes, ...consumeApprovalItems(deps, approval, use)], conflictMessage);
  } catch (err) {
    if (err instanceof AppError && err.code === "conflict") await checkApproval(deps, token, use);
    throw err;
  }
  return approval;
}
