import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Sandbox tests each start a private systemd user manager; two cores, so keep parallelism modest.
    maxWorkers: 2,
    minWorkers: 1,
    // One private PostgreSQL cluster per run, started only when a register test asks for it (test/helpers/postgres.ts).
    globalSetup: ['test/helpers/pg-global.ts'],
  },
});
