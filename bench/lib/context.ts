import type { Deps } from "../../core/deps.ts";
import type { ClusterConnection } from "../../core/pg/pgconn.ts";
import type { Infra } from "../../local/stack.ts";

export interface BenchContext {
  quick: boolean;
  /** `--repeat N` (default 1): rounds of the dump comparison, for the median of several runs. */
  repeat: number;
  tmp: string;
  infra: Infra;
  /** Environment of a child that builds its Deps with loadConfig() against the stand-ins. */
  childEnv: NodeJS.ProcessEnv;
  deps: Deps;
  /** The bench PostgreSQL's superuser connection (the "project cluster"). */
  conn: ClusterConnection;
  children: { dump: string; api: string };
  log(msg: string): void;
}

/** One checked target: what results.json and the table report as pass/fail. */
export interface Check {
  key: string;
  value: number;
  target: string;
  pass: boolean;
}

export interface MeasureResult {
  /** Figures under stable keys (nested objects). */
  figures: Record<string, unknown>;
  checks: Check[];
  /** Table rows: [measure, figure, baseline, ratio, target, verdict]. */
  rows: string[][];
}

/** libpq's environment for the bench's own tools (psql, pgbench, pg_basebackup) on `database` of the bench's server. */
export function pgEnv(ctx: BenchContext, database: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    LC_ALL: "C",
    PGHOST: ctx.conn.host,
    PGPORT: String(ctx.conn.port),
    PGUSER: ctx.conn.user,
    PGPASSWORD: ctx.conn.password,
    PGDATABASE: database,
    PGSSLMODE: "disable",
    PGPASSFILE: "/dev/null",
  };
}
