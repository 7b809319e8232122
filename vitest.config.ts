import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // TF.js keeps one global engine per process: isolate files in forks.
    pool: 'forks',
  },
});
