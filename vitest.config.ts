import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Sandbox tests each start a private systemd user manager; two cores, so keep parallelism modest.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
