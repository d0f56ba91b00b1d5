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
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // 2 cores: a few files at once; each uses its own topics, key prefix and database
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
    env: { NODE_ENV: 'test' },
  },
});
