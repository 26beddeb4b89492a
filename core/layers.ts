/**
 * The layers of core/, top first: a module imports from its own layer and the layers below it,
 * never from one above, and no chain of imports comes back to where it started. The HTTP edge and
 * the job machinery call the domains; the domains call the shared domain and the PostgreSQL
 * engine; everything stands on the store, the AWS clients and the ground floor.
 *
 * Entries are directories under core/ (or files at its root). test/layers.unit.test.ts holds the code
 * to this list and docs/architecture.md draws the same list; a new directory goes here first.
 */
export const layers: readonly (readonly string[])[] = [
  // HTTP: routes, auth middleware, console pages
  ["api", "console"],
  // job lifecycle and one runner per job type; the minute tick
  ["worker", "dispatch"],
  // domain modules: each owns its schema, its rules, its storage access
  ["backups", "restores", "previews", "promote", "exports", "downloads", "webhooks", "wal", "approvals"],
  // the shared domain below them: job state machine, outbox, principals and keys, audit, orgs and clusters
  ["jobs", "events", "auth", "audit", "orgs"],
  // the PostgreSQL engine: dump, restore, verify, archive reading and compression, base backups,
  // recovery instances, connections, failure classification; knows no domain
  ["pg"],
  // the DynamoDB store, the AWS clients, task launchers, the dependency record handed to everything
  ["db", "aws", "tasks", "deps.ts"],
  // the wire contract: the API's request and response schemas, which the routes, the domains and the
  // customer CLI share; stands on the ground floor only, so the CLI's bundle carries no server code
  ["contract"],
  // the ground floor
  ["config.ts", "layers.ts", "sst-links.ts", "log.ts", "log-format.ts", "ids.ts", "errors.ts", "redact.ts", "concurrency.ts", "zod.ts"],
];
