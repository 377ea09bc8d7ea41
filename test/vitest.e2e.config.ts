import { defineConfig } from "vitest/config";

// `npm run test:e2e`: the browser app in Debian's Chromium (playwright-core), against the real
// service on port 0 and a real PostgreSQL. The global setup builds dist/ (the web bundle too).
export default defineConfig({
  root: new URL("..", import.meta.url).pathname,
  test: {
    include: ["test/e2e/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
