// The unit specs alone: pure modules, no PostgreSQL and no build, so no global set-up.
// `npm test` runs them too, with everything else.
import { defineConfig } from "vitest/config";

export default defineConfig({
  root: new URL("..", import.meta.url).pathname,
  test: {
    include: ["test/unit/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 2,
  },
});
