import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    // Limits, not assertions: many files share 2 cores, each starting real PostgreSQL work.
    testTimeout: 180_000,
    hookTimeout: 240_000,
    pool: "forks",
    // Each file gets its own table, queue and databases, so files can run side by side.
    fileParallelism: true,
  },
});
