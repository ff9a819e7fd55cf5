import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2-core machines: a few files at a time, each in its own process (tests start threads and processes).
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
