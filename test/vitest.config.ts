import { defineConfig } from "vitest/config";

export default defineConfig({
  // This file lives in test/; paths below are relative to the repository root.
  root: new URL("..", import.meta.url).pathname,
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/bench/**", "test/e2e/**", "node_modules/**"],
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    // Two cores: more parallel files only queue on argon2 and PostgreSQL.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
