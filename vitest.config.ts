import { defineConfig } from "vitest/config";

/*
 * Two projects. `unit`: pure logic (`*.unit.test.ts`), no emulator started, milliseconds a file.
 * `integration`: everything else, on DynamoDB Local, fauxqs and a real PostgreSQL that the global
 * setup starts once per run. `npx vitest run <files>` starts the stand-ins only when a file of
 * the integration project is among them.
 */
export default defineConfig({
  test: {
    // Limits, not assertions: many files share 2 cores, each starting real PostgreSQL work.
    testTimeout: 180_000,
    hookTimeout: 240_000,
    pool: "forks",
    // Each file gets its own table, queue and databases, so files can run side by side.
    fileParallelism: true,
    projects: [
      { extends: true, test: { name: "unit", include: ["test/**/*.unit.test.ts"] } },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.unit.test.ts", "**/node_modules/**"],
          globalSetup: ["test/support/global-setup.ts"],
        },
      },
    ],
  },
});
