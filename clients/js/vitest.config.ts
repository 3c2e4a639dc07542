import { defineConfig } from "vitest/config";

// The validation suite calls bare describe/it/expect: globals on. One real agentstated for
// the run, started by test/server.ts (AGENTSTATE_TEST_STORE picks sqlite or postgres).
export default defineConfig({
  test: {
    globals: true,
    globalSetup: ["test/server.ts"],
    testTimeout: 30000,
    hookTimeout: 30000,
    fileParallelism: false,
  },
});
