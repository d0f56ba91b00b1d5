import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.unit.spec.ts'] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.int.spec.ts', 'test/e2e/**/*.e2e.spec.ts'],
          exclude: ['test/e2e/cluster.e2e.spec.ts', 'test/e2e/rolling-restart.e2e.spec.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // 2 cores: a few files at once; each uses its own topics, key prefix and database
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          // three more brokers and six Redis nodes: on their own, once the rest is done, one file at a time
          name: 'cluster',
          include: ['test/e2e/cluster.e2e.spec.ts', 'test/e2e/rolling-restart.e2e.spec.ts'],
          testTimeout: 180_000,
          hookTimeout: 240_000,
          maxWorkers: 1,
          sequence: { groupOrder: 2 },
        },
      },
    ],
    env: { NODE_ENV: 'test' },
  },
});
