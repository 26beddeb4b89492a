/**
 * The archiver entry: the WAL archive's long-running service (core/wal/archiver.ts), one receiver
 * per archived cluster, the due base backups, the continuity sweep and retention. Deployed it is
 * the `Archiver` Fargate service (infra/archiver.ts, one task, the task's image with
 * `node /var/task/archiver.mjs`); `npm start` runs the same archiver in its own process.
 *
 * Its configuration is the task's (core/config.ts: SST_RESOURCE_* links, the cluster key from
 * SSM). The spool (pg_receivewal's directory per cluster) is on the task's ephemeral disk: a new
 * task starts with an empty one, and pg_receivewal (16+) resumes from the replication slot's
 * restart_lsn, so nothing between is lost (the slot kept it on the cluster). SIGTERM (ECS stops
 * the task on deploy or scale-in): the receivers and a running base backup stop, exit 0.
 */
import { join } from "node:path";
import { tmpdir } from "node:os";
import { loadConfig } from "../core/config.ts";
import { createDeps } from "../core/deps.ts";
import { listPitrPins } from "../core/restores/points.ts";
import { taskIdentity } from "../core/tasks/identity.ts";
import { defaultArchiverOptions, startArchiver } from "../core/wal/archiver.ts";

try {
  const config = loadConfig();
  const deps = createDeps(config, { workerId: await taskIdentity() });
  const dir = process.env.CAPYDB_WAL_SPOOL_DIR || join(tmpdir(), "capydb-wal");
  const archiver = startArchiver(deps, {
    ...defaultArchiverOptions(join(dir, "spool")),
    scratchDir: dir,
    pinnedTimes: async (clusterId) => (await listPitrPins(deps, clusterId)).map((p) => new Date(p.pitr_time)),
  });
  deps.log.info("archiver started", { archiver_id: deps.workerId, spool: dir });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    deps.log.info("archiver stopping", { signal });
    await archiver.stop();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
} catch (err) {
  process.stderr.write(`capydb archiver: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
