import { defineConfig } from 'vitest/config';

/** Tests that submit jobs to the one Slurm test cluster (and crash its nodes): run one file at a time. */
const cluster = ['test/slurm-cluster.test.ts', 'test/slurm-faults.test.ts', 'test/cli/slurm.test.ts', 'test/slurm-gpus.test.ts', 'test/python-slurm.test.ts', 'test/slurm-elastic.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2-core machines: a few files at a time, each in its own process (tests start threads and processes).
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: cluster } },
      { extends: true, test: { name: 'cluster', include: cluster, fileParallelism: false } },
    ],
  },
});
