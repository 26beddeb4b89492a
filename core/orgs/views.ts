import type { Deps } from "../deps.ts";
import { listJobs } from "../jobs/jobs.ts";
import { getCluster, toProject, type Cluster, type Project, type ProjectView } from "./orgs.ts";

type Db = Pick<Deps, "ddb" | "table" | "now">;

/**
 * Projects as the API shows them: each with its cluster's connection facts and its newest job
 * (one read per distinct cluster, one per project for the job).
 */
export async function projectViews(deps: Db, projects: Project[]): Promise<ProjectView[]> {
  const clusters = new Map<string, Promise<Cluster | undefined>>();
  const clusterOf = (id: string) => {
    let c = clusters.get(id);
    if (!c) clusters.set(id, (c = getCluster(deps, id)));
    return c;
  };
  return Promise.all(
    projects.map(async (p) => {
      const [cluster, jobs] = await Promise.all([clusterOf(p.cluster_id), listJobs(deps, p.id, 1)]);
      return toProject(p, { cluster, latestJobId: jobs.items[0]?.id ?? null });
    }),
  );
}

export const projectView = async (deps: Db, project: Project): Promise<ProjectView> => (await projectViews(deps, [project]))[0]!;
