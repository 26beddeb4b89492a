import { extendZodWithOpenApi } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { idMismatch, isId, type IdKind } from "./ids.ts";

/**
 * The one `z` every schema of the project is built with: zod, given `.openapi()` here, once, before
 * any schema exists. The domains, the API's wire schemas and the CLIs all import it from this file,
 * so no schema depends on which module happened to load first.
 */
extendZodWithOpenApi(z);

export { z };

/**
 * The zod schema of an id of this kind, for every boundary that takes one (bodies, stored
 * references): shape checked before any lookup, so a wrong one is a 400, never a DynamoDB error.
 * Here rather than in ids.ts, which the console's bundle takes without zod.
 */
export function idSchema(kind: IdKind) {
  return z.string().refine((s) => isId(kind, s), { error: (issue) => idMismatch(kind, issue.input) });
}
